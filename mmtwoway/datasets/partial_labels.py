"""Partially labelled samples: how datasets emit mmtwoway's ``gt_score``.

mmtwoway's ignored-label convention (see
:func:`mmtwoway.models.heads.two_way_head.build_target`): a sample whose
labels are partly unknown carries ``gt_score``, a float vector of length C
with 1 for a positive, 0 for a negative and -1 for an ignored (unknown)
class; the loss and :class:`~mmtwoway.evaluation.MultiLabelMAP` leave the -1
entries out. A fully labelled sample may carry only ``gt_label``.

Storing a dense C-vector per sample would cost VAW (229k instances x 620
attributes) over a gigabyte, so the datasets here store index lists in their
``data_list`` and expand them in :meth:`PartialLabelMixin.get_data_info`,
i.e. only for the samples actually fetched:

* ``gt_label``: the positive class indices (as everywhere in mmpretrain, so
  ``get_cat_ids`` and class-aware samplers keep working);
* and exactly one of

  - ``neg_label``: the known negatives; every class in neither list is
    ignored (VAW, WIDER Attribute: most attributes are unknown);
  - ``ignored_label``: the unknown classes; every class in neither list is
    negative (VOC with difficult-only classes ignored).

Every sample of such a dataset gets a ``gt_score`` (mmpretrain's data
preprocessor stacks ``gt_score`` only when the first sample of a batch has
one, so a dataset must not mix samples with and without it).
"""
from typing import Iterable, Optional

import numpy as np

# The values of a gt_score entry.
POSITIVE, NEGATIVE, IGNORED = 1.0, 0.0, -1.0


def label_scores(num_classes: int,
                 positives: Iterable[int],
                 negatives: Optional[Iterable[int]] = None,
                 ignored: Optional[Iterable[int]] = None) -> np.ndarray:
    """The dense ``gt_score`` vector (1 / 0 / -1) of one sample.

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
    others = _indices(others, num_classes)
    positives = _indices(positives, num_classes)
    scores[others] = value
    # Positives are written last: the datasets resolve conflicts before, so
    # this order only matters for callers that pass overlapping lists.
    scores[positives] = POSITIVE
    return scores


def _indices(labels: Iterable[int], num_classes: int) -> np.ndarray:
    """Class indices as an int64 array, checked to lie in [0, C)."""
    labels = np.asarray(list(labels), dtype=np.int64)
    # A negative index would silently wrap around to the last classes.
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'class indices {labels.tolist()} are outside '
                         f'[0, {num_classes})')
    return labels


class PartialLabelMixin:
    """Adds ``gt_score`` to the samples of a partially labelled dataset.

    Mix it in before the mmpretrain dataset class (``class D(
    PartialLabelMixin, MultiLabelDataset)``). Samples that have a
    ``neg_label`` or an ``ignored_label`` list get ``gt_score`` from
    :func:`label_scores`; the lists stay in the sample for inspection.
    """

    def get_data_info(self, idx: int) -> dict:
        """The ``idx``-th sample, with ``gt_score`` when it is partial.

        Args:
            idx (int): Index of the sample.

        Returns:
            dict: The sample of the parent class plus ``gt_score``.
        """
        info = super().get_data_info(idx)
        if 'neg_label' in info or 'ignored_label' in info:
            # _metainfo, not metainfo: the property deep-copies it.
            info['gt_score'] = label_scores(
                len(self._metainfo['classes']),
                info['gt_label'],
                negatives=info.get('neg_label'),
                ignored=info.get('ignored_label'))
        return info
