"""BCE weighted by class frequencies [25] (Pham et al., VAW; Table 7 "BCE")."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .ignore_label_loss import ElementwiseLabelledLoss

Counts = Union[Sequence[float], torch.Tensor]

#: The weight formulas :func:`frequency_weights` knows, by name.
FORMULAS = ('balanced', 'pos_weight')


def check_formula(formula: str, power: float) -> None:
    """Raise a ValueError naming the choices for an unknown formula or a
    negative power."""
    if formula not in FORMULAS:
        raise ValueError(f'frequency weights: unknown formula {formula!r}; '
                         f'choose one of {FORMULAS} (see '
                         'mmtwoway.models.losses.frequency_weights).')
    if not power >= 0:
        raise ValueError(f'frequency weights: power must be >= 0, got '
                         f'{power}.')


def frequency_weights(pos_counts: Counts, neg_counts: Counts,
                      formula: str = 'balanced', power: float = 1.0):
    """Positive and negative weights of every class from label counts.

    With :math:`P_c` positive and :math:`N_c` negative training labels of
    class :math:`c` and its positive rate :math:`r_c = P_c / (P_c + N_c)`:

    * ``'balanced'`` (default, our reading of [25]):

      .. math::
          w^+_c = \\frac{1}{2 r_c}, \\qquad w^-_c = \\frac{1}{2 (1 - r_c)},

      so the positives and the negatives of each class weigh half each, and
      the total weight of a class over the training set, :math:`P_c w^+_c +
      N_c w^-_c = P_c + N_c`, is that of the unweighted BCE;
    * ``'pos_weight'``: :math:`w^+_c = N_c / P_c`, :math:`w^-_c = 1`, the
      per-class ``pos_weight`` that PyTorch's ``BCEWithLogitsLoss``
      documentation recommends (positives count as often as negatives;
      the total weight grows to :math:`2 N_c`).

    ``power`` tempers either formula, :math:`w \\mapsto w^{power}`: 1 (the
    default) is the formula itself, 0.5 the common square-root
    (smoothed) inverse frequency, 0 the unweighted BCE. A side a class
    never has in training (:math:`P_c = 0` or :math:`N_c = 0`) gets weight
    0; it never occurs there anyway.

    Args:
        pos_counts (Counts): ``(C,)`` number of positive labels per class.
        neg_counts (Counts):
            ``(C,)`` number of negative labels per class (ignored
            labels are neither).
        formula (str): ``'balanced'`` or ``'pos_weight'``.
        power (float): exponent applied to the weights, >= 0.

    Returns:
        tuple[Tensor, Tensor]: float64 ``(C,)`` weights ``w+`` and ``w-``.

    Raises:
        ValueError: for counts of other shapes or negative, an unknown
            formula or a negative power.
    """
    check_formula(formula, power)
    pos = torch.as_tensor(pos_counts, dtype=torch.float64)
    neg = torch.as_tensor(neg_counts, dtype=torch.float64)
    if pos.dim() != 1 or pos.shape != neg.shape:
        raise ValueError('frequency_weights: pos_counts and neg_counts must be'
                         f' (C,) vectors, got {tuple(pos.shape)} and '
                         f'{tuple(neg.shape)}')
    if (pos < 0).any() or (neg < 0).any():
        raise ValueError('frequency_weights: label counts must be >= 0')
    total = pos + neg
    if formula == 'balanced':
        w_pos, w_neg = total / (2 * pos.clamp(min=1)), total / (
            2 * neg.clamp(min=1))
    else:  # 'pos_weight'
        w_pos, w_neg = neg / pos.clamp(min=1), torch.ones_like(neg)
    w_pos = torch.where(pos > 0, w_pos**power, torch.zeros_like(pos))
    w_neg = torch.where(neg > 0, w_neg**power, torch.zeros_like(neg))
    return w_pos, w_neg


@MODELS.register_module()
class FrequencyWeightedBCELoss(ElementwiseLabelledLoss):
    """Binary cross-entropy (eq. 19) weighted by training-set class frequency.

    .. math::
        \\ell_i = -\\sum_{c:\\, y_{ic} \\ge 0} w^+_c\\, y_{ic} \\log
        \\sigma(x_{ic}) + w^-_c (1 - y_{ic}) \\log (1 - \\sigma(x_{ic})),

    averaged over the images of the batch (the head's ``avg_factor``), with
    :math:`w^\\pm_c` from :func:`frequency_weights` — the frequency-based
    re-weighting of [25] that balances each class's rare positives against
    its many negatives (our reading of [25]; the two-way paper gives no
    formula; ``formula`` and ``power`` select the alternatives). Ignored
    labels (target < 0) give neither loss nor gradient.

    Where the weights come from: they are statistics of the *training set*,
    never typed into a config. ``ClassFrequencyHook`` (see
    ``configs/_base_/losses/bce.py``) counts the labels of
    ``runner.train_dataloader.dataset`` before training and calls
    :meth:`set_label_counts`; counts can also be given here (e.g. in a
    script). The weights are non-persistent buffers: they follow the module
    to its device (a step never copies them) but are not stored in
    checkpoints (the hook recomputes
    them on resume, and inference does not use them).

    Args:
        pos_counts (Sequence[float], optional): ``(C,)`` positive label
            counts of the training set.
        neg_counts (Sequence[float], optional): ``(C,)`` negative counts.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
        formula (str): the weight formula, ``'balanced'`` (default) or
            ``'pos_weight'``; see :func:`frequency_weights`.
        power (float): exponent tempering the weights (1: the formula, 0.5:
            square-root, 0: unweighted). Defaults to 1.0.
    """

    def __init__(self,
                 pos_counts: Optional[Counts] = None,
                 neg_counts: Optional[Counts] = None,
                 loss_weight: float = 1.0,
                 formula: str = 'balanced',
                 power: float = 1.0) -> None:
        check_formula(formula, power)
        super().__init__(loss_weight=loss_weight)
        # Empty until counted: buffers follow the model to its device, so
        # the weights set later land there and no step copies them.
        self.register_buffer('pos_weight', torch.empty(0), persistent=False)
        self.register_buffer('neg_weight', torch.empty(0), persistent=False)
        if (pos_counts is None) != (neg_counts is None):
            raise ValueError('FrequencyWeightedBCELoss: give both pos_counts '
                             'and neg_counts, or neither (ClassFrequencyHook '
                             'then sets them from the training set).')
        self.formula, self.power = formula, float(power)
        if pos_counts is not None:
            self.set_label_counts(pos_counts, neg_counts)

    def set_label_counts(self, pos_counts: Counts, neg_counts: Counts) -> None:
        """Set the class weights from the training set's label counts."""
        w_pos, w_neg = frequency_weights(pos_counts, neg_counts,
                                         self.formula, self.power)
        # On the device the module already lives on (the hook runs after
        # the model is moved to the GPU).
        self.pos_weight = w_pos.to(self.pos_weight.device, torch.float32)
        self.neg_weight = w_neg.to(self.neg_weight.device, torch.float32)

    def element_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Weighted BCE of every entry for 0/1 targets ``y``."""
        if self.pos_weight.numel() == 0:
            raise RuntimeError(
                'FrequencyWeightedBCELoss has no class frequencies. Add '
                "custom_hooks=[dict(type='ClassFrequencyHook')] to the config "
                '(configs/_base_/losses/bce.py does) so that they are counted'
                ' on the training set, or pass pos_counts/neg_counts.')
        if x.size(1) != self.pos_weight.numel():
            raise ValueError(
                f'FrequencyWeightedBCELoss: {x.size(1)} logits per sample but '
                f'C = {self.pos_weight.numel()} classes were counted; check '
                'num_classes of the head against the training dataset.')
        w_pos, w_neg = self.pos_weight, self.neg_weight
        # -[w+ y log s(x) + w- (1 - y) log(1 - s(x))] in the stable form of
        # BCE with logits: log s(x) = -softplus(-x), log(1 - s(x)) =
        # -softplus(x).
        return w_pos * y * F.softplus(-x) + w_neg * (1 - y) * F.softplus(x)

    def extra_repr(self) -> str:
        classes = self.pos_weight.numel() or None
        return (f'classes={classes}, formula={self.formula!r}, '
                f'power={self.power}, loss_weight={self.loss_weight}')
