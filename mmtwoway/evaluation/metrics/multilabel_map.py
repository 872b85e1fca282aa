"""``MultiLabelMAP``: the paper's mAP@class and mAP@sample, as a metric.

A thin stateful wrapper around :func:`mmtwoway.evaluation.mean_ap`: it keeps
one score vector and one target vector (1 positive, 0 negative, -1 ignored)
per sample and computes both mAPs once the whole set is gathered.

Every sample is counted exactly once in distributed evaluation. mmengine's
``BaseMetric.evaluate(size)`` gathers the ranks' results in the sampler's
order and cuts them to ``size``, which drops the copies that
``DefaultSampler`` pads the last ranks with. When the samples carry a
``sample_idx`` (mmengine datasets put it in every data sample), results are
additionally de-duplicated by it, keeping the first, so a sampler that pads
elsewhere than at the end, or a loop that repeats a batch, cannot count a
sample twice.
"""
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from mmtwoway.structures import (DIFFICULT_TARGETS, batch_dicts, batch_scores,
                                 metric_target)
from ..functional.average_precision import mean_ap, way_to_dim
from .results import add_sample_idx, check_not_empty, unique_results


@METRICS.register_module()
class MultiLabelMAP(BaseMetric):
    """mAP@class (eq. 23) and mAP@sample (eq. 24) of Kobayashi, CVPR 2023.

    Each mAP is the mean, in percent, of the non-interpolated APs of the
    classes (or samples) that have at least one positive; see
    :func:`mmtwoway.evaluation.mean_ap`. With the default prefix the keys
    are ``'multi-label/mAP@class'`` and ``'multi-label/mAP@sample'``.

    Targets per sample: ``gt_score`` if the data sample has one (1 positive,
    0 negative, -1 ignored: the project's ignored-label convention; in
    general its sign is used), else the multi-hot vector of ``gt_label``
    (every other class negative). A class listed in ``gt_label_difficult``
    (mmpretrain's VOC dataset puts the classes that only have difficult
    objects there) that is not positive becomes ``difficult_as``.

    Args:
        ways (Sequence[str]):
            Which mAPs to report, among ``'class'`` and ``'sample'``.
        difficult_as (str): ``'ignore'`` (default, excluded from the ranking),
            ``'negative'`` or ``'positive'``.
        collect_device (str): Device used to gather the results across ranks,
            ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Prefix of the metric names; ``None`` uses
            ``default_prefix`` (``'multi-label'``, as mmpretrain's
            multi-label metrics).
        collect_dir (str, optional): Folder used to gather the results when
            ``collect_device='cpu'``; ``None`` makes a temporary one.

    Examples:
        >>> import torch
        >>> from mmpretrain.structures import DataSample
        >>> metric = MultiLabelMAP()
        >>> samples = [
        ...     DataSample().set_pred_score(torch.tensor([.9, .1, .5]))
        ...     .set_gt_label([0]),
        ...     DataSample().set_pred_score(torch.tensor([.2, .8, .4]))
        ...     .set_gt_label([1, 2])]
        >>> metric.process(None, [s.to_dict() for s in samples])
        >>> {k: round(v, 2) for k, v in metric.evaluate(2).items()}
        {'multi-label/mAP@class': 83.33, 'multi-label/mAP@sample': 100.0}
    """

    default_prefix: Optional[str] = 'multi-label'

    def __init__(self,
                 ways: Sequence[str] = ('class', 'sample'),
                 difficult_as: str = 'ignore',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        ways = (ways, ) if isinstance(ways, str) else tuple(ways)
        if not ways or len(set(ways)) != len(ways):
            raise ValueError('ways must name each mAP at most once and at '
                             f'least one of them, got {ways!r}')
        for way in ways:
            way_to_dim(way)  # fail at construction, not after a whole epoch
        if difficult_as not in DIFFICULT_TARGETS:
            raise ValueError(f'difficult_as must be one of '
                             f'{tuple(DIFFICULT_TARGETS)}, got '
                             f'{difficult_as!r}')
        self.ways = ways
        self.difficult_as = difficult_as

    def process(self, data_batch: Any,
                data_samples: Sequence[Dict[str, Any]]) -> None:
        """Store the scores, the target and the index of every sample.

        The batch's scores and labels go to the CPU in one copy each,
        before any indexing, wherever the model ran: every stored result is
        a CPU tensor, and the GPU is waited on once per batch, not once per
        sample.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[Dict[str, Any]]):
                The model's outputs, as dicts (what mmengine's
                ``Evaluator`` passes) or as data samples. ``pred_score``
                may be any monotone score (probabilities, logits).
        """
        samples = batch_dicts(data_samples)
        if not samples:
            return
        scores = batch_scores(samples)
        targets = metric_target(samples, scores[0].numel(),
                                self.difficult_as)
        for sample, score, target in zip(samples, scores, targets):
            result = dict(pred_score=score, target=target)
            add_sample_idx(result, sample)
            self.results.append(result)

    def compute_metrics(self,
                        results: List[Dict[str, Any]]) -> Dict[str, float]:
        """Both mAPs, in percent, over the gathered results.

        Args:
            results (List[Dict[str, Any]]):
                The results of :meth:`process` from every rank.

        Returns:
            dict: ``{'mAP@class': float, 'mAP@sample': float}`` (the
            requested ``ways``), without the prefix that ``evaluate`` adds.
        """
        unique = unique_results(results)
        check_not_empty(unique, type(self).__name__)
        scores = torch.stack([r['pred_score'] for r in unique])
        targets = torch.stack([r['target'] for r in unique])
        return {
            f'mAP@{way}': float(mean_ap(scores, targets, way))
            for way in self.ways
        }
