"""Base of the losses that compare logits inside a bucket, row- or column-wise.

The two-way loss (eq. 17) and the comparison losses of Tables 3b and 4a
(softmax with normalised labels, eq. 18; multi-similarity, eq. 20) share one
structure on the logit matrix ``X`` (M x C) of a bucket of M images:

* a *one-way* loss maps one slice (a row: the classes of an image; or a
  column: the images of a class) to a number;
* ``ways='sample'`` averages it over rows, ``'class'`` over columns and
  ``'both'`` adds the two averages (eq. 17); a slice the one-way loss cannot
  score (e.g. without a positive) is left out of its average;
* the loss of a batch is the mean over its buckets (Sec. 4.1).

:class:`BucketLoss` implements everything but the one-way loss, so that a
subclass only writes its equation. Like ``TwoWayLoss`` it never synchronises
with the host (no boolean indexing, ``nonzero`` or ``.item()``).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from .two_way_loss import masked_mean, split_buckets

#: The ways a bucket loss can be measured (Table 3).
BUCKET_WAYS = ('both', 'sample', 'class')


class BucketLoss(nn.Module):
    """Row-/column-wise loss on buckets of M images (abstract base).

    Subclasses implement :meth:`one_way`. ``forward`` takes mmpretrain's loss
    call signature, so a subclass is a drop-in ``loss=`` of mmpretrain heads.

    Args:
        ways (str): ``'sample'`` (rows), ``'class'`` (columns) or ``'both'``
            (their sum, as eq. 17).
        bucket_size (int, optional): M. None: the local (per-GPU) batch is
            one bucket. See ``TwoWayLoss`` for buckets smaller or larger
            than the local batch; only class-wise terms depend on it.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 ways: str = 'both',
                 bucket_size: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        if ways not in BUCKET_WAYS:
            raise ValueError(
                f'{name}: ways={ways!r} is not one of {BUCKET_WAYS}')
        if bucket_size is not None and (not isinstance(bucket_size, int)
                                        or bucket_size < 1):
            raise ValueError(f'{name}: bucket_size must be None or a '
                             f'positive int, got {bucket_size!r}')
        self.ways = ways
        self.bucket_size = bucket_size
        self.loss_weight = loss_weight

    def one_way(self, x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """The one-way loss of every slice along ``dim``.

        Args:
            x (Tensor): ``(B, M, C)`` float logits of the buckets.
            pos (Tensor): bool mask of the positives, same shape.
            neg (Tensor): bool mask of the negatives (ignored entries are in
                neither mask).
            dim (int): -1 for rows (sample-wise), -2 for columns
                (class-wise).

        Returns:
            tuple[Tensor, Tensor]: the loss of every slice and a bool mask
            of the slices that enter the average (both shaped like ``x``
            without ``dim``). Left-out slices must hold a finite value or
            -inf with a zero gradient.
        """
        raise NotImplementedError(
            f'{type(self).__name__} must implement one_way()')

    def bucket_loss(self, logits: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
        """The loss of every bucket of ``(B, M, C)`` logits, shape ``(B,)``.

        Computed in float32 (float64 stays float64): half-precision
        log-sum-exp loses the small differences the losses compare.
        """
        x = logits if logits.dtype == torch.float64 else logits.float()
        pos, neg = target > 0, target == 0
        total = x.new_zeros(x.shape[:-2])
        if self.ways in ('both', 'sample'):
            total = total + masked_mean(*self.one_way(x, pos, neg, dim=-1))
        if self.ways in ('both', 'class'):
            total = total + masked_mean(*self.one_way(x, pos, neg, dim=-2))
        return total

    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): ``(N, C)`` logits of the local batch.
            target (Tensor): ``(N, C)`` labels: 1 positive, 0 negative,
                any negative value ignored.
            weight (Tensor, optional): ``(N, C)`` or ``(N, 1)``; entries
                with weight 0 are ignored like ``target < 0``. The loss is
                not element-wise, so other values only mark an entry as
                present.
            avg_factor (float, optional): accepted for the mmpretrain head
                interface and unused: the ways already average over rows
                and columns, and the result is averaged over buckets.
            reduction_override (str, optional): ``'mean'`` (default) or
                ``'sum'`` over buckets, or ``'none'`` for every bucket.

        Returns:
            Tensor: the loss (a scalar unless reduction is ``'none'``).
        """
        name = type(self).__name__
        if cls_score.dim() != 2 or cls_score.shape != target.shape:
            raise ValueError(
                f'{name} expects logits and targets of the same shape '
                f'(N, C), got {tuple(cls_score.shape)} and '
                f'{tuple(target.shape)}. Targets must be multi-hot '
                '(use gt_score, or a head that converts gt_label).')
        target = target.to(cls_score.device)
        if weight is not None:
            target = target.masked_fill(weight.expand_as(target) == 0, -1)
        logits, target = split_buckets(cls_score, target, self.bucket_size)
        per_bucket = self.bucket_loss(logits, target)
        reduction = reduction_override or 'mean'
        if reduction == 'mean':
            loss = per_bucket.mean()
        elif reduction == 'sum':
            loss = per_bucket.sum()
        elif reduction == 'none':
            loss = per_bucket
        else:
            raise ValueError(f'{name}: unknown reduction {reduction!r}; use '
                             "'mean', 'sum' or 'none'")
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return f'ways={self.ways!r}, bucket_size={self.bucket_size}'
