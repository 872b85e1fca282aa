"""The one rule for non-finite targets, where targets are read on the host.

A target is ``> 0`` (positive), ``== 0`` (negative) or ``< 0`` (ignored);
``+-inf`` fall into those sets by their sign. NaN is none of them: reading
it as "ignored" (what ``target > 0`` / ``target == 0`` tests do) or as
"negative" (what ``sign()`` then an integer cast does) silently changes the
result (86.1 vs 100.0 mAP on one 3 x 3 example). So a NaN target is an
error that names the sample, wherever targets reach the host: the metrics,
:func:`~mmtwoway.evaluation.mean_ap`, the calibration tool. Inside the loss,
which must not wait for the device, a NaN target makes the bucket's loss
NaN instead, and ``NonFiniteLossHook`` stops training and names the
samples.
"""
from typing import Any, Mapping, Optional

import torch


def describe_sample(sample: Optional[Mapping[str, Any]]) -> str:
    """How an error message names a data sample: its image, else its index.

    Args:
        sample: A data sample as a dict (or None).

    Returns:
        str: ``'image PATH'``, ``'sample_idx N'`` or ``'a sample'``.
    """
    if sample is None:
        return 'a sample'
    for key, label in (('img_path', 'image'), ('sample_idx', 'sample_idx')):
        value = sample.get(key)
        if value is not None:
            return f'{label} {value}'
    return 'a sample'


def check_target_not_nan(target: torch.Tensor, what: str) -> None:
    """Raise if a target vector or matrix holds NaN.

    Integer and boolean targets cannot hold NaN and are not scanned.

    Args:
        target: The targets, any shape.
        what: What they belong to, e.g. ``'the gt_score of image a.jpg'``;
            the message starts with it.

    Raises:
        ValueError: There is a NaN; the message gives the count and the
            index of the first one.
    """
    if not target.is_floating_point():
        return
    nan = torch.isnan(target)
    if not bool(nan.any()):
        return
    first = tuple(int(i) for i in (nan.nonzero()[0] if nan.dim() else ()))
    where = (f' (first at index {first[0]})' if len(first) == 1 else
             f' (first at sample {first[0]}, class {first[1]})'
             if len(first) == 2 else '')
    raise ValueError(
        f'{what} has {int(nan.sum())} NaN target(s){where}. A target must '
        'be > 0 (positive), 0 (negative) or < 0 (ignored, e.g. -1); NaN is '
        'none of them. Fix the annotations, or write -1 for an unknown '
        'label.')
