"""Two-way multi-label loss (Kobayashi, "Two-way Multi-Label Loss", CVPR 2023),
on device tensors only: a training step never waits on the host.
"""
from functools import partial
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .bucket_loss import BucketLoss, ways_loss
from .utils import check_number, soft_max


def one_way_loss(x: torch.Tensor,
                 pos: torch.Tensor,
                 neg: torch.Tensor,
                 dim: int,
                 tp: float = 4.0,
                 tn: float = 1.0,
                 margin: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. 14 along ``dim``: per-slice losses and which slices count.

    The soft hardest negative ``Tn * log sum_n exp(x_n / Tn)`` (a smooth max)
    and the soft hardest positive ``Tp * log sum_p exp(-x_p / Tp)`` (minus a
    smooth min, eq. 5) meet in ``softplus(hard_neg + hard_pos + eps)``.
    Sample-wise (eq. 15) it runs along rows, class-wise (eq. 16) along
    columns. ``Tp = 4``, ``Tn = 1`` are the paper's (Table 1); ``Tp > 1``
    widens the margin on the positive side, ``T = 0`` gives the hard max.

    Returns:
        tuple: the loss of every slice (0 where it has no negative) and a
        mask of the slices with at least one positive, which are the ones
        that enter the mean.
    """
    hard_neg = soft_max(x, neg, tn, dim)
    hard_pos = soft_max(-x, pos, tp, dim)
    loss = F.softplus(hard_neg + hard_pos + margin)
    return loss, pos.any(dim)


def two_way_loss(logits: torch.Tensor,
                 target: torch.Tensor,
                 tp: float = 4.0,
                 tn: float = 1.0,
                 ways: str = 'both',
                 margin: float = 0.0) -> torch.Tensor:
    """Two-way loss of each bucket (functional form).

    Args:
        logits (Tensor): ``(..., M, C)`` logits; leading dims are buckets.
        target (Tensor): same shape; ``> 0`` positive, ``== 0`` negative,
            ``< 0`` ignored (in neither set).
        tp (float): positive temperature Tp (0 = hard minimum).
        tn (float): negative temperature Tn (0 = hard maximum).
        ways (str): ``'both'`` (eq. 17), ``'sample'`` (eq. 15),
            ``'class'`` (eq. 16) or ``'joint'`` (eq. 22).
        margin (float): logit bias eps added inside the softplus (Table 2).

    Returns:
        Tensor: the loss of every bucket, shape ``logits.shape[:-2]``,
        computed in float32 (or float64 for float64 input); NaN for a
        bucket with a non-finite logit or a NaN target.
    """
    one_way = partial(one_way_loss, tp=tp, tn=tn, margin=margin)
    return ways_loss(logits, target, one_way, ways)


@MODELS.register_module()
class TwoWayLoss(BucketLoss):
    """Two-way multi-label loss, a drop-in ``loss=`` of mmpretrain heads.

    Args:
        tp (float): positive temperature Tp. Defaults to 4.0 (Table 1).
        tn (float): negative temperature Tn. Defaults to 1.0.
        ways (str): ``'both'`` (eq. 17), ``'sample'`` (eq. 15 only),
            ``'class'`` (eq. 16 only) or ``'joint'`` (eq. 22).
        margin (float): logit bias eps inside the softplus (Table 2).
            Defaults to 0.
        bucket_size (int, optional): M, the number of images whose logit
            matrix is compared class-wise. None: the local (per-GPU) batch
            is one bucket, the paper's 4 x 128 setup. Smaller than the local
            batch: consecutive buckets of M. Larger: a bucket spans
            M / local_batch consecutive ranks (differentiable all-gather).
        loss_weight (float): multiplier of the loss. Defaults to 1.0.

    Targets: ``> 0`` positive, ``== 0`` negative, ``< 0`` ignored. The loss
    is the mean over buckets of each bucket's loss; a row or column without
    positives is left out of its mean, one with positives but no negatives
    contributes 0 and still counts, and a bucket without any positive gives
    0 (attached to the graph, never NaN). Half-precision logits are computed
    in float32. The loss is invariant to a constant shift of all logits.

    Non-finite input: a bucket with a logit that is +-inf or NaN, or a NaN
    target, has a NaN loss (never a finite loss with NaN gradients); the
    check runs on the device, and ``NonFiniteLossHook`` stops training on
    it. Finite logits of any magnitude (1e30 included) give a finite loss
    and gradient.

    Raises:
        TypeError: A temperature, ``margin`` or ``loss_weight`` that is not
            a number (e.g. ``tp='4'``).
        ValueError: One that is NaN or infinite, a negative temperature, an
            unknown ``ways`` or a bad ``bucket_size``.
    """

    WAYS = ('both', 'sample', 'class', 'joint')
    #: Adding a constant to all logits leaves the loss unchanged, so the
    #: logits have no zero point (``TrainSettingsHook`` warns about a
    #: sigmoid > 0.5 decision on them).
    SHIFT_INVARIANT = True

    def __init__(self,
                 tp: float = 4.0,
                 tn: float = 1.0,
                 ways: str = 'both',
                 margin: float = 0.0,
                 bucket_size: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__(ways, bucket_size, loss_weight)
        self.tp = check_number('TwoWayLoss', 'tp', tp, minimum=0.)
        self.tn = check_number('TwoWayLoss', 'tn', tn, minimum=0.)
        self.margin = check_number('TwoWayLoss', 'margin', margin)

    def one_way(self, x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Eq. 14 with this loss's temperatures and margin."""
        return one_way_loss(x, pos, neg, dim, self.tp, self.tn, self.margin)

    def extra_repr(self) -> str:
        return (f'tp={self.tp}, tn={self.tn}, margin={self.margin}, ' +
                super().extra_repr())
