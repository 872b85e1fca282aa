from .average_precision import average_precision, mean_ap
from .decision import (calibrate_delta, calibrate_thresholds,
                       label_set_scores, relative_labels, threshold_labels,
                       topk_labels)

__all__ = [
    'average_precision', 'mean_ap', 'topk_labels', 'threshold_labels',
    'relative_labels', 'calibrate_thresholds', 'calibrate_delta',
    'label_set_scores'
]
