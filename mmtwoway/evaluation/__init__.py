from .decision import (Decision, calibrate_delta, calibrate_thresholds,
                       label_set_scores)
from .functional import average_precision, mean_ap
from .metrics import MultiLabelF1, MultiLabelMAP

__all__ = [
    'average_precision', 'mean_ap', 'MultiLabelMAP',
    'calibrate_thresholds', 'calibrate_delta', 'label_set_scores',
    'MultiLabelF1', 'Decision'
]
