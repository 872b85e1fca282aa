"""mmtwoway's data structures: the 1 / 0 / -1 label convention of targets,
and the decision that turns scores into label sets."""
from .decision import (Decision, check_class_names, load_calibration,
                       relative_labels, save_calibration, threshold_labels,
                       topk_labels)
from .targets import (DIFFICULT_TARGETS, IGNORED, NEGATIVE, POSITIVE,
                      batch_dicts, batch_scores, build_target,
                      check_target_not_nan, describe_sample, label_scores,
                      metric_target, to_cpu)

__all__ = [
    'POSITIVE', 'NEGATIVE', 'IGNORED', 'DIFFICULT_TARGETS', 'label_scores',
    'build_target', 'metric_target', 'to_cpu', 'batch_dicts', 'batch_scores',
    'Decision', 'check_class_names', 'load_calibration', 'save_calibration',
    'topk_labels', 'threshold_labels', 'relative_labels',
    'check_target_not_nan', 'describe_sample'
]
