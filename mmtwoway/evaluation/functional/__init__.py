from .average_precision import average_precision, mean_ap
from .decision import (calibrate_delta, calibrate_thresholds,
                       label_set_scores)

__all__ = [
    'average_precision', 'mean_ap', 'calibrate_thresholds', 'calibrate_delta',
    'label_set_scores'
]
