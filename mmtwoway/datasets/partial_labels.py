"""Partially labelled samples: how datasets emit mmtwoway's ``gt_score``."""
from mmtwoway.structures import label_scores


class PartialLabelMixin:
    """Adds ``gt_score`` to the samples of a partially labelled dataset.

    mmtwoway's ignored-label convention (see
    :mod:`mmtwoway.structures.targets`): a sample whose
    labels are partly unknown carries ``gt_score``, a float vector of length C
    with 1 for a positive, 0 for a negative and -1 for an ignored (unknown)
    class; the loss and :class:`~mmtwoway.evaluation.MultiLabelMAP` leave the
    -1 entries out. A fully labelled sample may carry only ``gt_label``.

    Storing a dense C-vector per sample would cost VAW (229k instances x 620
    attributes) over a gigabyte, so the datasets here store index lists in
    their ``data_list`` and expand them in
    :meth:`PartialLabelMixin.get_data_info`, i.e. only for the samples
    actually fetched:

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
