"""Ignored labels (target < 0) for mmpretrain's element-wise losses."""
from typing import Optional

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from .utils import autocast_off


def reduce_labelled(loss: torch.Tensor,
                    labelled: torch.Tensor,
                    weight: Optional[torch.Tensor] = None,
                    reduction: str = 'mean',
                    avg_factor: Optional[float] = None) -> torch.Tensor:
    """Reduce an element-wise ``(N, C)`` loss over its labelled entries.

    Args:
        loss (Tensor): element-wise loss, ``(N, C)``.
        labelled (Tensor): bool mask of the entries that have a label.
        weight (Tensor, optional): element-wise weight broadcastable to
            ``(N, C)`` (e.g. ``(N, 1)`` per sample).
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'``.
        avg_factor (float, optional): with ``'mean'``, the sum is divided by
            it (mmpretrain heads pass the batch size, giving the per-image
            sum over classes of eq. 19, averaged); without it, the mean over
            the labelled entries.

    Returns:
        Tensor: the reduced loss, or with ``'none'`` the element-wise loss
        with 0 at unlabelled entries.
    """
    if weight is not None:
        loss = loss * weight
    # masked_fill, not a product: an unlabelled entry's value never reaches
    # the result or its gradient, whatever it is.
    loss = loss.masked_fill(~labelled, 0.)
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        if avg_factor is not None:
            raise ValueError("avg_factor cannot be used with reduction='sum'")
        return loss.sum()
    if reduction == 'mean':
        if avg_factor is None:
            return loss.sum() / labelled.sum().clamp(min=1)
        return loss.sum() / avg_factor
    raise ValueError(f"unknown reduction {reduction!r}; use 'mean', 'sum' or "
                     "'none'")


class ElementwiseLabelledLoss(nn.Module):
    """Base of element-wise multi-label losses that skip ignored labels.

    ``forward`` checks the shapes, calls :meth:`element_loss` on float32
    logits and the target clamped to {0, 1}, and reduces the entries whose
    target is >= 0 with :func:`reduce_labelled`; entries with target < 0
    give neither loss nor gradient.

    Args:
        reduction (str): ``'mean'`` (default) or ``'sum'``.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if reduction not in ('mean', 'sum'):
            raise ValueError(f'{type(self).__name__}: reduction must be mean '
                             f'or sum, got {reduction!r}')
        self.reduction = reduction
        self.loss_weight = loss_weight

    def element_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The ``(N, C)`` loss of every entry for 0/1 float targets ``y``."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement element_loss()')

    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        """Compute the loss over the labelled entries.

        Args:
            cls_score (Tensor): ``(N, C)`` logits.
            target (Tensor): ``(N, C)``: 1 positive, 0 negative, < 0
                ignored.
            weight (Tensor, optional): element-wise weight broadcastable to
                ``(N, C)``.
            avg_factor (float, optional): divisor of the sum for ``'mean'``
                (mmpretrain heads pass the batch size).
            reduction_override (str, optional): ``'mean'``, ``'sum'`` or
                ``'none'``.

        Returns:
            Tensor: the loss.
        """
        name = type(self).__name__
        if cls_score.dim() != 2 or cls_score.shape != target.shape:
            raise ValueError(
                f'{name} expects logits and targets of the same shape (N, C),'
                f' got {tuple(cls_score.shape)} and {tuple(target.shape)}.')
        target = target.to(cls_score.device)
        # float32 inside and autocast off, as the two-way loss: half-
        # precision logs and powers near 0 and 1 are what these losses
        # weigh (fp16 rounds ASL's eps = 1e-8 to 0).
        with autocast_off(cls_score.device):
            element = self.element_loss(cls_score.float(),
                                        target.clamp(min=0).float())
        if element.shape != cls_score.shape:
            raise ValueError(
                f'{name}: the element-wise loss has shape '
                f'{tuple(element.shape)}; {tuple(cls_score.shape)} is needed.')
        loss = reduce_labelled(element, target >= 0, weight,
                               reduction_override or self.reduction,
                               avg_factor)
        return self.loss_weight * loss


@MODELS.register_module()
class IgnoreLabelLoss(ElementwiseLabelledLoss):
    """Wrap an element-wise mmpretrain loss so that target < 0 is ignored.

    mmpretrain's ``FocalLoss``, ``AsymmetricLoss`` and sigmoid
    ``CrossEntropyLoss`` read the target as a number, so a -1 ("unknown", as in
    VAW's and WIDER Attribute's partial labels) would be trained as a label of
    -1. :class:`IgnoreLabelLoss` wraps any of them unchanged: it asks the inner
    loss for its element-wise values on a clean 0/1 target and reduces only the
    labelled entries.

    The inner loss runs unchanged (its own equation and parameters) with
    ``reduction_override='none'`` on the target clamped to {0, 1}; the
    entries whose target is negative are then dropped from the sum and
    from the count, so they give neither loss nor gradient. For the focal
    loss [18] with :math:`p_t` the probability of the true label, that is

    .. math::
        \\ell = \\frac{1}{N} \\sum_{(i, c):\\, y_{ic} \\ge 0}
                -\\alpha_t (1 - p_t)^{\\gamma} \\log p_t ,

    and likewise for ASL [2] or sigmoid cross-entropy.

    Example:
        ``loss=dict(type='IgnoreLabelLoss', loss=dict(type='FocalLoss',
        gamma=2.0))``

    Args:
        loss (dict): config of the inner loss (any mmpretrain loss that
            returns an ``(N, C)`` loss with ``reduction_override='none'``;
            its own ``loss_weight`` applies).
        reduction (str): ``'mean'`` (default) or ``'sum'``.
    """

    def __init__(self, loss: dict, reduction: str = 'mean') -> None:
        super().__init__(reduction=reduction)
        self.inner = MODELS.build(loss)

    def element_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The inner loss, unreduced."""
        return self.inner(x, y, reduction_override='none')

    def extra_repr(self) -> str:
        return f'reduction={self.reduction!r}'
