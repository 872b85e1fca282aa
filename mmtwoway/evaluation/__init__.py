from .functional import (average_precision, calibrate_delta,
                         calibrate_thresholds, label_set_scores, mean_ap)
from .metrics import MultiLabelF1, MultiLabelMAP

__all__ = [
    'average_precision', 'mean_ap', 'MultiLabelMAP',
    'calibrate_thresholds', 'calibrate_delta', 'label_set_scores',
    'MultiLabelF1'
]
