"""Fitting the decision rules on held-out data, exactly, and F1s of label
sets; entries with a negative target are ignored throughout."""
from typing import Dict, NamedTuple, Tuple

import torch

from ..functional.average_precision import ArrayLike, rank_positives
from .rules import as_scores_2d, score_gaps

# The keys of LabelSetScores.overall, in reporting order.
OVERALL_KEYS = ('CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')


class CalibratedThresholds(NamedTuple):
    """Per-class thresholds and the F1 each reaches on the calibration set.

    Attributes:
        thresholds: (C,) float64; ``+inf`` for a class without a positive.
        f1: (C,) float64 in [0, 1]; NaN for a class without a positive.
    """

    thresholds: torch.Tensor
    f1: torch.Tensor


def calibrate_thresholds(scores: ArrayLike,
                         targets: ArrayLike) -> CalibratedThresholds:
    """The threshold that maximises each class's F1, exactly.

    For one class, F1 at threshold ``t`` is ``2 TP / (TP + FP + P)``:
    between two positive scores TP stays constant while FP grows as ``t``
    falls, so the optimum is one of the positives' scores, and the F1 at
    each of them comes from the counts of
    :func:`~mmtwoway.evaluation.functional.average_precision.rank_positives`
    (the same sort as AP); tied scores are taken whole. Among
    candidates with the same F1 the highest wins (the fewest labels). The
    threshold returned lies halfway between the chosen score and the next
    lower non-ignored score of the class, so that it is robust on new data
    and ``score >= threshold`` reproduces the calibration-set decision
    exactly; without a lower score it lies below the chosen score by half the
    gap to the next higher score (by 0.5 when there is none), never on a
    score. A class
    without a positive cannot be calibrated: it gets ``+inf`` (never
    predicted) and F1 NaN.

    Args:
        scores (ArrayLike): (N, C) scores of a held-out set (e.g. logits).
        targets (ArrayLike):
            (N, C); ``> 0`` positive, ``== 0`` negative, ``< 0``
            ignored.

    Returns:
        CalibratedThresholds: thresholds and F1s, one per class.

    Raises:
        ValueError: Shapes differ, NaN at a non-ignored entry, or no entry.
    """
    ranks = rank_positives(scores, targets, dim=0)
    num_pos = ranks.num_positives()
    num_classes = num_pos.numel()
    thresholds = torch.full((num_classes, ), float('inf'),
                            dtype=torch.float64)
    f1 = torch.full((num_classes, ), float('nan'), dtype=torch.float64)
    if ranks.queries.shape[1] == 0:
        return CalibratedThresholds(thresholds, f1)
    # F1 of the rule ``score >= query`` at every positive: hits = TP,
    # retrieved = TP + FP; -1 at the paddings so that they never win.
    cand = (2 * ranks.hits).double() / (ranks.retrieved +
                                        num_pos[:, None]).double()
    cand = cand.masked_fill(~ranks.real_mask(), -1.)
    # Queries ascend: the last maximum is the highest threshold.
    width = cand.shape[1]
    best = width - 1 - cand.flip(1).argmax(dim=1, keepdim=True)
    chosen = ranks.queries.gather(1, best)
    # The next lower non-ignored score (ignored ones sit first as -inf).
    below = torch.searchsorted(ranks.ranked, chosen, side='left') - 1
    has_below = below.squeeze(1) >= ranks.num_ignored
    lower = ranks.ranked.gather(1, below.clamp(min=0)).squeeze(1).double()
    chosen = chosen.squeeze(1).double()
    midpoint = (chosen + lower) / 2
    use_mid = has_below & lower.isfinite() & chosen.isfinite()
    # Without a lower score, step below the chosen one by half the gap to
    # the next higher score (1 when there is none): a threshold equal to a
    # score would flip with the last bit of another runtime's logits.
    above = torch.searchsorted(ranks.ranked, chosen[:, None], side='right')
    higher = ranks.ranked.gather(
        1, above.clamp(max=ranks.ranked.shape[1] - 1)).squeeze(1).double()
    gap = torch.where((above.squeeze(1) < ranks.ranked.shape[1])
                      & higher.isfinite(), higher - chosen,
                      torch.ones_like(chosen))
    below_all = chosen - gap / 2
    calibrated = torch.where(use_mid, midpoint,
                             torch.where(chosen.isfinite(), below_all, chosen))
    has_pos = num_pos > 0
    thresholds = torch.where(has_pos, calibrated, thresholds)
    f1 = torch.where(has_pos, cand.gather(1, best).squeeze(1), f1)
    return CalibratedThresholds(thresholds, f1)


def calibrate_delta(scores: ArrayLike,
                    targets: ArrayLike) -> Tuple[float, float]:
    """The ``delta`` of :func:`relative_labels` that maximises OF1, exactly.

    One ``delta`` is shared by all classes, so it is fitted to the pooled
    (overall, micro) F1 of all non-ignored entries: the rule is the
    threshold ``-gap >= -delta`` on the flattened gaps of
    :func:`score_gaps`, calibrated by :func:`calibrate_thresholds` on that
    single column (same tie handling, halfway placement).

    Args:
        scores (ArrayLike): (N, C) scores of a held-out set.
        targets (ArrayLike):
            (N, C); ``> 0`` positive, ``== 0`` negative, ``< 0``
            ignored.

    Returns:
        tuple: ``(delta, of1)`` as floats, ``delta >= 0`` and the OF1 in
        [0, 1] that it reaches on the calibration set.

    Raises:
        ValueError: If there is no positive target (nothing to fit).
    """
    gaps = score_gaps(scores)
    targets = torch.as_tensor(targets)
    if targets.shape != gaps.shape:
        raise ValueError(f'scores of shape {tuple(gaps.shape)} and targets '
                         f'of shape {tuple(targets.shape)} differ')
    fitted = calibrate_thresholds(-gaps.reshape(-1, 1),
                                  targets.reshape(-1, 1))
    if not torch.isfinite(fitted.thresholds[0]):
        raise ValueError('cannot calibrate delta: no positive target')
    # +0.0 rather than -0.0 when the top score alone is the best rule.
    return float(-fitted.thresholds[0]) + 0., float(fitted.f1[0])


class LabelSetScores(NamedTuple):
    """Precision, recall and F1 of decided label sets.

    Attributes:
        precision: (C,) float64, TP / predicted; 0 for a class never
            predicted (as sklearn's ``zero_division=0``).
        recall: (C,) float64, TP / positives; NaN without positives.
        f1: (C,) float64, ``2 TP / (predicted + positives)``; NaN without
            positives.
        num_positives: (C,) long, non-ignored positives of each class.
        num_predicted: (C,) long, non-ignored entries decided positive.
        overall: ``CP, CR, CF1, OP, OR, OF1`` in percent, see
            :func:`label_set_scores`.
    """

    precision: torch.Tensor
    recall: torch.Tensor
    f1: torch.Tensor
    num_positives: torch.Tensor
    num_predicted: torch.Tensor
    overall: Dict[str, float]


def _harmonic(p: float, r: float) -> float:
    """Harmonic mean, 0 when both are 0."""
    return 2 * p * r / (p + r) if p + r > 0 else 0.


def label_set_scores(decided: ArrayLike,
                     targets: ArrayLike) -> LabelSetScores:
    """Per-class and overall precision, recall and F1 of label sets.

    Ignored entries (target < 0) are left out entirely, whatever was
    decided there. The summary follows the multi-label literature (e.g.
    ML-GCN, ASL):

    * CP, CR: mean over the classes with at least one positive of the
      per-class precision (0 for a class never predicted) and recall;
      classes without positives are left out, as in mAP@class;
    * CF1: the harmonic mean of CP and CR -- not the mean of the per-class
      F1s, which is ``f1[num_positives > 0].mean()``;
    * OP, OR, OF1: precision, recall and F1 of all non-ignored entries
      pooled (micro average), every class counted.

    Args:
        decided (ArrayLike): (N, C) bool (or 0/1) mask of the decided labels.
        targets (ArrayLike):
            (N, C); ``> 0`` positive, ``== 0`` negative, ``< 0``
            ignored.

    Returns:
        LabelSetScores: per-class values in [0, 1], overall in percent.

    Raises:
        ValueError: If the shapes differ or no entry is positive.
    """
    decided = as_scores_2d(decided, 'decided').cpu().bool()
    targets = torch.as_tensor(targets).cpu()
    if targets.shape != decided.shape:
        raise ValueError(f'decided of shape {tuple(decided.shape)} and '
                         f'targets of shape {tuple(targets.shape)} differ')
    positive = targets > 0
    predicted = decided & (targets >= 0)
    tp = (predicted & positive).sum(0)
    num_pred = predicted.sum(0)
    num_pos = positive.sum(0)
    has_pos = num_pos > 0
    if not has_pos.any():
        raise ValueError('precision/recall/F1 are undefined: no entry has a '
                         'positive target')
    tp_d, pred_d, pos_d = tp.double(), num_pred.double(), num_pos.double()
    precision = torch.where(num_pred > 0, tp_d / pred_d.clamp(min=1), 0.)
    nan = torch.tensor(float('nan'), dtype=torch.float64)
    recall = torch.where(has_pos, tp_d / pos_d.clamp(min=1), nan)
    f1 = torch.where(has_pos, 2 * tp_d / (pred_d + pos_d).clamp(min=1), nan)
    cp = float(precision[has_pos].mean())
    cr = float(recall[has_pos].mean())
    total_pred = float(pred_d.sum())
    op = float(tp_d.sum()) / total_pred if total_pred else 0.
    orr = float(tp_d.sum() / pos_d.sum())
    values = (cp, cr, _harmonic(cp, cr), op, orr, _harmonic(op, orr))
    overall = {key: 100 * v for key, v in zip(OVERALL_KEYS, values)}
    return LabelSetScores(precision, recall, f1, num_pos, num_pred, overall)
