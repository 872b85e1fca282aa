"""mmtwoway's label convention: target matrices of 1 (positive), 0 (negative)
and -1 (ignored).
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.structures import BaseDataElement

# The values of a target entry.
POSITIVE, NEGATIVE, IGNORED = 1.0, 0.0, -1.0

# What a class listed in ``gt_label_difficult`` (and not a plain positive)
# becomes in a metric's target.
DIFFICULT_TARGETS = {'ignore': -1, 'negative': 0, 'positive': 1}

SampleLike = Union[BaseDataElement, Dict[str, Any]]


def label_scores(num_classes: int,
                 positives: Iterable[int],
                 negatives: Optional[Iterable[int]] = None,
                 ignored: Optional[Iterable[int]] = None) -> np.ndarray:
    """The dense ``gt_score`` vector (1 / 0 / -1) of one sample.

    Every loss, metric and tool of mmtwoway reads a target entry as

    * ``> 0``: positive (``POSITIVE`` = 1),
    * ``== 0``: negative (``NEGATIVE`` = 0),
    * ``< 0``: ignored, the label is unknown (``IGNORED`` = -1).

    A data sample carries its labels in one of two ways. A fully labelled
    sample may carry only ``gt_label``, its positive class indices (as
    everywhere in mmpretrain); every other class is negative. A sample whose
    labels are partly unknown carries ``gt_score``, a float vector of length C
    with the values above; datasets build it with :func:`label_scores`.

    Args:
        num_classes (int): C, the length of the vector.
        positives (Iterable[int]): Positive class indices.
        negatives (Iterable[int], optional): Known negative class indices;
            if given, the classes in neither list are ignored.
        ignored (Iterable[int], optional): Unknown class indices; if given
            (and ``negatives`` is not), the classes in neither list are
            negative.

    Returns:
        np.ndarray: float32 vector of shape ``(num_classes, )``.

    Raises:
        ValueError: Both or neither of ``negatives`` and ``ignored`` are
            given, or an index is outside ``[0, num_classes)``.
    """
    if (negatives is None) == (ignored is None):
        raise ValueError('label_scores needs exactly one of `negatives` '
                         '(the rest ignored) and `ignored` (the rest '
                         'negative).')
    if negatives is not None:
        scores = np.full(num_classes, IGNORED, dtype=np.float32)
        others, value = negatives, NEGATIVE
    else:
        scores = np.full(num_classes, NEGATIVE, dtype=np.float32)
        others, value = ignored, IGNORED
    others = _checked_indices(others, num_classes)
    positives = _checked_indices(positives, num_classes)
    scores[others] = value
    # Positives are written last: the datasets resolve conflicts before, so
    # this order only matters for callers that pass overlapping lists.
    scores[positives] = POSITIVE
    return scores


def _checked_indices(labels: Iterable[int], num_classes: int,
                     where: str = '') -> np.ndarray:
    """Class indices as an int64 array, checked to lie in [0, C)."""
    labels = np.asarray(list(labels), dtype=np.int64)
    # A negative index would silently wrap around to the last classes.
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'class indices {labels.tolist()}{where} are '
                         f'outside [0, {num_classes}); check num_classes in '
                         'the config.')
    return labels


def _get(sample: SampleLike, key: str) -> Any:
    """``sample[key]`` of a data sample or its dict form, else None."""
    return sample.get(key, None)


def _where(sample: SampleLike) -> str:
    path = _get(sample, 'img_path')
    return f' of {path}' if path else ''


def describe_sample(sample: Optional[SampleLike]) -> str:
    """How an error message names a data sample: its image, else its index.

    Args:
        sample (SampleLike, optional): A data sample as a dict (or None).

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

    Non-finite targets: ``+-inf`` fall into the three sets by their sign. NaN
    is none of them: reading it as "ignored" (what ``target > 0`` / ``target ==
    0`` tests do) or as "negative" (what ``sign()`` then an integer cast does)
    silently changes the result (86.1 vs 100.0 mAP on one 3 x 3 example). So a
    NaN target is an error that names the sample wherever targets reach the
    host (:func:`metric_target`, :func:`~mmtwoway.evaluation.mean_ap`, the
    calibration tool). Inside the loss, which must not wait for the device, a
    NaN target makes the bucket's loss NaN instead, and ``NonFiniteLossHook``
    stops training and names the samples.

    Integer and boolean targets cannot hold NaN and are not scanned.

    Args:
        target (torch.Tensor): The targets, any shape.
        what (str):
            What they belong to, e.g. ``'the gt_score of image a.jpg'``;
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


def build_target(data_samples: Sequence[SampleLike],
                 num_classes: int,
                 device: Union[None, str, torch.device] = None
                 ) -> torch.Tensor:
    """The float target matrix ``(N, C)`` of a batch, for the losses.

    Two consumers turn a batch of data samples into a target matrix:

    * :func:`build_target`, for the losses: a float ``(N, C)`` matrix on the
      logits' device, built for the whole batch at once with no host sync and
      no CPU/GPU mix, since mmpretrain's data preprocessor has already moved
      ``gt_label`` / ``gt_score`` to the GPU;
    * :func:`metric_target`, for the metrics and tools: an int8 ``(N, C)``
      matrix on the CPU, where VOC's ``gt_label_difficult`` is applied.

    ``gt_score`` rows are used as they are; ``gt_label`` rows become 1 at
    the positive indices and 0 elsewhere. Samples of both kinds may share a
    batch. The matrix is built on ``device`` for the whole batch at once:
    the labels are concatenated and written with one ``index_put_``, so no
    label value is read on the host (on a GPU, a read is a sync that stalls
    the queue of kernels).

    Label ranges are checked on the host when the labels are CPU tensors
    (the datasets and the hook of class frequencies); labels already on a
    GPU are checked there with an asynchronous device assertion, which
    stops the run at the next sync without causing one.

    Args:
        data_samples (Sequence[SampleLike]):
            The batch's data samples (or their dicts).
        num_classes (int): C.
        device (str | torch.device, optional):
            Where to build the matrix; by default that of the first
            sample's labels.

    Returns:
        torch.Tensor: float32 ``(N, C)``, 1 positive, 0 negative, -1
        ignored.

    Raises:
        ValueError: A sample without labels, a ``gt_score`` of another
            length than C, or a CPU label outside ``[0, C)``.
    """
    scored: List[int] = []
    scores: List[torch.Tensor] = []
    labelled: List[int] = []
    labels: List[torch.Tensor] = []
    for i, sample in enumerate(data_samples):
        score = _get(sample, 'gt_score')
        if score is not None:
            score = torch.as_tensor(score)
            if score.numel() != num_classes:
                raise ValueError(
                    f'gt_score{_where(sample)} has {score.numel()} entries '
                    f'but the head has {num_classes} classes; check '
                    'num_classes in the model config.')
            scored.append(i)
            scores.append(score.reshape(num_classes))
            continue
        label = _get(sample, 'gt_label')
        if label is None:
            raise ValueError(
                f'data sample {i}{_where(sample)} has neither gt_label nor '
                'gt_score, so it has no target.')
        label = torch.as_tensor(label).reshape(-1)
        if label.device.type == 'cpu':
            _checked_indices(label.tolist(), num_classes, _where(sample))
        labelled.append(i)
        labels.append(label)
    if device is None:
        first = (scores or labels or [torch.empty(0)])[0]
        device = first.device
    target = torch.zeros(
        len(data_samples), num_classes, dtype=torch.float32, device=device)
    if scores:
        rows = torch.stack([s.to(device, torch.float32) for s in scores])
        target[_index(scored, device)] = rows
    if labels:
        counts = [label.numel() for label in labels]  # shapes: no sync
        cols = torch.cat([label.to(device, torch.long) for label in labels])
        rows = torch.tensor(
            [row for row, n in zip(labelled, counts) for _ in range(n)],
            dtype=torch.long).to(device, non_blocking=True)
        if cols.device.type != 'cpu' and cols.numel():
            torch._assert_async((cols.min() >= 0) & (cols.max() < num_classes),
                                f'a gt_label is outside [0, {num_classes}); '
                                'check num_classes in the config')
        target.index_put_((rows, cols), target.new_ones(()))
    return target


def _index(rows: List[int], device: Union[str, torch.device]) -> Any:
    """Row index of a list of samples: a slice when they are all of them."""
    if rows == list(range(len(rows))):
        return slice(0, len(rows))
    return torch.tensor(rows, dtype=torch.long).to(device, non_blocking=True)


def metric_target(data_samples: Sequence[SampleLike],
                  num_classes: int,
                  difficult_as: str = 'ignore') -> torch.Tensor:
    """The int8 target matrix ``(N, C)`` of a batch, on the CPU.

    The sign of ``gt_score`` if a sample has one, else the multi-hot vector
    of ``gt_label``; a class of ``gt_label_difficult`` that is not positive
    becomes ``difficult_as`` (as in mmpretrain's VOC metric, a class that
    also has a non-difficult object stays positive). The labels of the
    whole batch go to the CPU in one copy before any indexing, wherever the
    batch was.

    Args:
        data_samples (Sequence[SampleLike]):
            The batch's data samples (or their dicts).
        num_classes (int): C, the length of the samples' ``pred_score``.
        difficult_as (str): ``'ignore'``, ``'negative'`` or ``'positive'``.

    Returns:
        torch.Tensor: ``(N, C)`` int8 on the CPU.

    Raises:
        ValueError: A sample without labels, a target that does not have C
            classes, a label outside ``[0, C)``, a NaN in a ``gt_score``
            (the message names the sample's image), or a bad
            ``difficult_as``.
    """
    if difficult_as not in DIFFICULT_TARGETS:
        raise ValueError(f'difficult_as must be one of '
                         f'{tuple(DIFFICULT_TARGETS)}, got {difficult_as!r}')
    for sample in data_samples:
        if _get(sample, 'gt_score') is None and _get(sample,
                                                     'gt_label') is None:
            keys = sorted(sample.keys() if isinstance(sample, dict) else
                          sample.all_keys())
            raise ValueError('a multi-label metric needs a gt_score or a '
                             'gt_label in every data sample, got keys '
                             f'{keys}')
        score = _get(sample, 'gt_score')
        if score is not None and torch.as_tensor(score).shape != (
                num_classes, ):
            raise ValueError(
                f'the target{_where(sample)} has shape '
                f'{tuple(torch.as_tensor(score).shape)}, but its pred_score '
                f'has {num_classes} classes')
    cpu = _labels_to_cpu(data_samples)
    for copy, sample in zip(cpu, data_samples):
        if 'gt_score' in copy:
            check_target_not_nan(copy['gt_score'],
                                 f'the gt_score of {describe_sample(sample)}')
    target = build_target(cpu, num_classes, device='cpu').sign().to(
        torch.int8)
    for row, sample in zip(target, data_samples):
        difficult = _get(sample, 'gt_label_difficult')
        if difficult is None or len(difficult) == 0:
            continue
        difficult = torch.as_tensor(
            _checked_indices(torch.as_tensor(difficult).reshape(-1).tolist(),
                             num_classes, _where(sample)))
        difficult = difficult[row[difficult] <= 0]
        row[difficult] = DIFFICULT_TARGETS[difficult_as]
    return target


def _labels_to_cpu(data_samples: Sequence[SampleLike]) -> List[dict]:
    """The samples' labels as CPU tensors, in one copy per kind of label.

    Copying sample by sample would wait on the GPU once per sample; the
    labels are concatenated on their device and copied once instead.
    """
    out = [dict(img_path=_get(sample, 'img_path')) for sample in data_samples]
    for key in ('gt_score', 'gt_label'):
        owners, values = [], []
        for i, sample in enumerate(data_samples):
            value = _get(sample, key)
            if value is not None and all(k not in out[i]
                                         for k in ('gt_score', 'gt_label')):
                owners.append(i)
                values.append(torch.as_tensor(value).detach().reshape(-1))
        for i, value in zip(owners, to_cpu(values)):
            out[i][key] = value
    return out


def to_cpu(tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """CPU copies of 1-D tensors of one dtype, in one device-to-host copy.

    Args:
        tensors (Sequence[torch.Tensor]):
            1-D tensors on one device (any lengths).

    Returns:
        list: Their CPU copies (new tensors, never views of a batch).
    """
    if not tensors:
        return []
    sizes = [t.numel() for t in tensors]
    flat = torch.cat(list(tensors)).detach().to('cpu', copy=True)
    return [part.clone() for part in flat.split(sizes)]


def batch_dicts(data_samples: Sequence[SampleLike]) -> List[Dict[str, Any]]:
    """The data samples of a batch as dicts."""
    return [
        s.to_dict() if isinstance(s, BaseDataElement) else s
        for s in data_samples
    ]


def batch_scores(samples: Sequence[Dict[str, Any]]) -> List[torch.Tensor]:
    """The float32 ``pred_score`` of each sample of a batch, on the CPU.

    One device-to-host copy for the whole batch; each score is its own
    tensor, so a stored result holds no reference to GPU memory.

    Raises:
        ValueError: The scores of the batch have different lengths.
    """
    scores = [torch.as_tensor(s['pred_score']).detach() for s in samples]
    sizes = {score.numel() for score in scores}
    if len(sizes) != 1:
        raise ValueError('the pred_score of the samples of one batch have '
                         f'different lengths {sorted(sizes)}')
    return to_cpu([score.reshape(-1).float() for score in scores])
