"""mmtwoway's data structures: the 1 / 0 / -1 label convention of targets."""
from .targets import (DIFFICULT_TARGETS, IGNORED, NEGATIVE, POSITIVE,
                      batch_dicts, batch_scores, build_target,
                      check_target_not_nan, describe_sample, label_scores,
                      metric_target, to_cpu)

__all__ = [
    'POSITIVE', 'NEGATIVE', 'IGNORED', 'DIFFICULT_TARGETS', 'label_scores',
    'build_target', 'metric_target', 'to_cpu', 'batch_dicts', 'batch_scores',
    'check_target_not_nan', 'describe_sample'
]
