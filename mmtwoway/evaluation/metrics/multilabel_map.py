"""``MultiLabelMAP``: the paper's mAP@class and mAP@sample, as a metric.

Each sample counts once in distributed evaluation, in bounded memory.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import (all_gather, all_gather_object, all_reduce,
                           get_rank, get_world_size)
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from mmtwoway.structures import (DIFFICULT_TARGETS, batch_dicts, batch_scores,
                                 metric_target)
from mmtwoway.structures.targets import check_target_not_nan
from ..functional.average_precision import (DEFAULT_MAX_MEMORY,
                                            average_precision, mean_ap,
                                            slices_per_chunk, way_to_dim)
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
        max_memory (int, optional): Working-memory budget in bytes of the
            ranking beyond the stored scores (default 1 GiB; see
            :func:`mmtwoway.evaluation.mean_ap`); distributed, also bounds
            the class chunk gathered at a time. None: no limit.

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
                 collect_dir: Optional[str] = None,
                 max_memory: Optional[int] = DEFAULT_MAX_MEMORY) -> None:
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
        slices_per_chunk(1, 4, max_memory)  # validates max_memory
        self.max_memory = max_memory

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
        scores, targets = stack_results(unique)
        return {
            f'mAP@{way}': float(
                mean_ap(scores, targets, way, max_memory=self.max_memory))
            for way in self.ways
        }

    def evaluate(self, size: int) -> Dict[str, float]:
        """The mAPs over the ``size`` samples of the dataset.

        On one process this is ``BaseMetric.evaluate`` (the results are
        released as they are stacked). Distributed, the
        ranks do not gather every score: each keeps its share, mAP@sample
        sums the APs of its own rows (an all-reduce of two numbers), and
        mAP@class gathers one chunk of columns at a time (within
        ``max_memory``) and ranks it on every rank. The samples counted
        are those of mmengine's ``collect_results``: the first ``size`` in
        the sampler's interleaved order, once per ``sample_idx`` (so a
        sampler that pads elsewhere, or a repeated batch, counts no sample
        twice).

        Args:
            size (int): Length of the evaluated dataset.

        Returns:
            dict: The metrics with the prefix, identical on every rank.
        """
        if get_world_size() == 1:
            # As BaseMetric.evaluate, but the per-sample results are let
            # go while they are copied into the score matrix: the peak is
            # one copy of the scores, not two.
            results = unique_results(self.results[:size])
            self.results.clear()
            check_not_empty(results, type(self).__name__)
            scores, targets = stack_results(results, release=True)
            metrics = {
                f'mAP@{way}': float(
                    mean_ap(scores, targets, way, max_memory=self.max_memory))
                for way in self.ways
            }
        else:
            metrics = self._distributed_metrics(size)
        self.results.clear()
        if self.prefix:
            metrics = {f'{self.prefix}/{k}': v for k, v in metrics.items()}
        return metrics

    def _distributed_metrics(self, size: int) -> Dict[str, float]:
        """:meth:`compute_metrics` without gathering the whole matrix."""
        rank, world = get_rank(), get_world_size()
        # Position of each local result in collect_results' order.
        keys = [(j * world + rank, r.get('sample_idx'))
                for j, r in enumerate(self.results) if j * world + rank < size]
        everyone = sorted(k for part in all_gather_object(keys) for k in part)
        seen, kept = set(), set()
        for pos, idx in everyone:
            if idx is None or idx not in seen:
                kept.add(pos)
                if idx is not None:
                    seen.add(idx)
        check_not_empty(list(kept), type(self).__name__)
        mine = [r for j, r in enumerate(self.results)
                if j * world + rank in kept]
        shapes = all_gather_object((len(mine), self.num_classes_hint()))
        counts = [n for n, _ in shapes]
        classes = {c for _, c in shapes if c is not None}
        if len(classes) != 1:
            raise ValueError('MultiLabelMAP: the ranks have scores of '
                             f'different lengths {sorted(classes)}')
        scores, targets = stack_results(mine, classes.pop())
        metrics = {}
        for way in self.ways:
            if way == 'sample':
                ap = average_precision(scores, targets, 1, self.max_memory)
                ap = ap[~ap.isnan()]
                total = torch.tensor([float(ap.sum()), float(ap.numel())],
                                     dtype=torch.float64)
                total = _all_reduce_sum(total)
                aps_sum, num = float(total[0]), int(total[1])
                if num == 0:
                    raise ValueError('mAP@sample is undefined: none of the '
                                     f'{sum(counts)} sample slices has a '
                                     'positive target')
                metrics['mAP@sample'] = aps_sum / num * 100
            else:
                metrics['mAP@class'] = self._class_map(scores, targets,
                                                       counts)
        return metrics

    def _class_map(self, scores: torch.Tensor, targets: torch.Tensor,
                   counts: List[int]) -> float:
        """mAP@class over the ranks, one gathered chunk of columns at a
        time."""
        total = sum(counts)
        # The gathered chunk (scores + int8 targets, padded rows) and its
        # ranking share the budget.
        width = slices_per_chunk(total, scores.element_size(),
                                 self.max_memory)
        width = max(1, width * 2 // 3)
        aps = []
        for start in range(0, scores.shape[1], width):
            cols = slice(start, start + width)
            s = _gather_rows(scores[:, cols].contiguous(), counts)
            t = _gather_rows(targets[:, cols].contiguous(), counts)
            aps.append(average_precision(s, t, 0, max_memory=None))
            del s, t
        ap = torch.cat(aps)
        if ap.isnan().all():
            raise ValueError(f'mAP@class is undefined: none of the '
                             f'{ap.numel()} class slices has a positive '
                             'target')
        return float(ap[~ap.isnan()].mean() * 100)

    def num_classes_hint(self) -> Optional[int]:
        """C from the first local result (None without any)."""
        return (int(self.results[0]['pred_score'].numel())
                if self.results else None)


def stack_results(results: List[Optional[Dict[str, Any]]],
                  num_classes: Optional[int] = None,
                  release: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """The (N, C) float32 scores and int8 targets of per-sample results.

    Copies into preallocated matrices: the only extra memory is the two
    matrices (``torch.stack`` of float targets would take four times as
    much for the targets).

    Args:
        results (list[dict]): With ``pred_score`` and ``target``.
        num_classes (int, optional): C when ``results`` may be empty.
        release (bool): Set each entry of ``results`` to None once copied,
            so that the caller's only reference to it goes.

    Returns:
        tuple: ``(scores, targets)``.
    """
    c = int(results[0]['pred_score'].numel()) if results else num_classes
    n = len(results)
    scores = torch.empty((n, c or 0), dtype=torch.float32)
    targets = torch.empty((n, c or 0), dtype=torch.int8)
    for i, r in enumerate(results):
        scores[i] = r['pred_score']
        target = r['target']
        if target.is_floating_point():  # results made elsewhere
            check_target_not_nan(target, f'the target of sample {i}')
            target = target.sign()
        targets[i] = target
        if release:
            results[i] = None
    return scores, targets


def _all_reduce_sum(data: torch.Tensor) -> torch.Tensor:
    """Sum of ``data`` over the ranks (a copy)."""
    data = data.clone()
    all_reduce(data, op='sum')
    return data


def _gather_rows(block: torch.Tensor, counts: List[int]) -> torch.Tensor:
    """Concatenate every rank's rows of ``block`` (padded to one size)."""
    rows = max(counts)
    if block.shape[0] < rows:
        pad = block.new_zeros((rows - block.shape[0], ) + block.shape[1:])
        block = torch.cat([block, pad])
    parts = all_gather(block)
    return torch.cat([p[:n].cpu() for p, n in zip(parts, counts)])
