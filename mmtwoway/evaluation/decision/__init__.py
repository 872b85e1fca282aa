"""The decision that turns scores into label sets: rules, fitting, file."""
from .files import (check_class_names, load_calibration,
                    save_calibration)
from .fitting import (OVERALL_KEYS, calibrate_delta, calibrate_thresholds,
                      label_set_scores)
from .rules import (Decision, relative_labels, score_gaps, threshold_labels,
                    topk_labels)

__all__ = [
    'Decision', 'topk_labels', 'threshold_labels', 'relative_labels',
    'score_gaps', 'calibrate_thresholds', 'calibrate_delta',
    'label_set_scores', 'OVERALL_KEYS', 'check_class_names',
    'load_calibration', 'save_calibration'
]
