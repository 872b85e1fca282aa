"""Two-way multi-label loss (Kobayashi, "Two-way Multi-Label Loss", CVPR 2023).

For a bucket of M images with logits ``X`` (M x C) and labels ``Y``:

* the soft hardest negative of a set is ``Tn * log sum_n exp(x_n / Tn)``
  (a smooth max of the negative logits, eq. 14);
* the soft hardest positive enters as ``Tp * log sum_p exp(-x_p / Tp)``
  (minus a smooth min of the positive logits, eq. 5 and 14);
* one loss ``softplus(hard_negative + hard_positive + eps)`` compares them.

Sample-wise (eq. 15) it runs along each row (classes of one image),
class-wise (eq. 16) along each column (images of one class); the two-way
loss (eq. 17) adds the mean over rows to the mean over columns. ``Tp = 4``,
``Tn = 1`` are the paper's temperatures (Table 1); ``Tp > 1`` widens the
margin on the positive side, and ``T = 0`` gives the hard max / min.

Everything below runs on device tensors only: no boolean-mask indexing,
``nonzero`` or ``.item()``, so a training step never waits on the host.
"""
from typing import Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

WAYS = ('both', 'sample', 'class', 'joint')
_NEG_INF = float('-inf')


def soft_max(z: torch.Tensor, mask: torch.Tensor, t: float,
             dim: int) -> torch.Tensor:
    """``t * log sum exp(z / t)`` over the entries of ``mask`` along ``dim``.

    Entries outside ``mask`` are excluded exactly (filled with -inf, not a
    finite number that leaks for large logits). A slice with no entry gives
    -inf, with a zero (not NaN) gradient. ``t == 0`` is the hard max.
    """
    nonempty = mask.any(dim, keepdim=True)
    # -inf outside the mask; slices with nothing to pool stay finite so that
    # logsumexp's backward is NaN-free, and are set to -inf afterwards.
    z = z.masked_fill(~mask, _NEG_INF).masked_fill(~nonempty, 0.)
    if t == 0:
        pooled = z.amax(dim, keepdim=True)
    else:
        pooled = t * torch.logsumexp(z / t, dim, keepdim=True)
    return pooled.masked_fill(~nonempty, _NEG_INF).squeeze(dim)


def one_way_loss(x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                 tp: float, tn: float, margin: float,
                 dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. 14 along ``dim``: per-slice losses and which slices count.

    Returns:
        tuple: the loss of every slice (0 where it has no negative) and a
        mask of the slices with at least one positive, which are the ones
        that enter the mean.
    """
    hard_neg = soft_max(x, neg, tn, dim)
    hard_pos = soft_max(-x, pos, tp, dim)
    loss = F.softplus(hard_neg + hard_pos + margin)
    return loss, pos.any(dim)


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the last dim of the ``valid`` entries; 0 if there are none."""
    total = values.masked_fill(~valid, 0.).sum(-1)
    return total / valid.sum(-1).clamp(min=1)


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
        computed in float32 (or float64 for float64 input).
    """
    x = logits if logits.dtype == torch.float64 else logits.float()
    pos, neg = target > 0, target == 0
    if ways == 'joint':
        loss, valid = one_way_loss(x.flatten(-2), pos.flatten(-2),
                                   neg.flatten(-2), tp, tn, margin, -1)
        return loss.masked_fill(~valid, 0.)
    total = x.new_zeros(x.shape[:-2])
    if ways in ('both', 'sample'):
        total = total + masked_mean(
            *one_way_loss(x, pos, neg, tp, tn, margin, dim=-1))
    if ways in ('both', 'class'):
        total = total + masked_mean(
            *one_way_loss(x, pos, neg, tp, tn, margin, dim=-2))
    return total


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``scale`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


_BUCKET_GROUPS = {}


def _bucket_group(ranks_per_bucket: int):
    """Process group of the consecutive ranks that share this rank's bucket.

    ``new_group`` is collective, so every rank creates every group, in the
    same order, the first time a bucket spans ranks.
    """
    world = dist.get_world_size()
    key = (world, ranks_per_bucket)
    if key not in _BUCKET_GROUPS:
        groups = [
            dist.new_group(list(range(start, start + ranks_per_bucket)))
            for start in range(0, world, ranks_per_bucket)
        ]
        _BUCKET_GROUPS[key] = groups
    return _BUCKET_GROUPS[key][dist.get_rank() // ranks_per_bucket]


def gather_bucket(logits: torch.Tensor, target: torch.Tensor,
                  ranks_per_bucket: int):
    """All-gather a bucket spread over ``ranks_per_bucket`` consecutive ranks.

    Every rank of the group computes the same bucket loss, so the gradient
    that the bucket loss sends to this rank's own logits equals the one its
    k - 1 peers compute for them. Scaling it by k therefore gives each rank
    the summed gradient without a backward all-reduce, and after DDP's
    average over ranks the update equals that of one process computing the
    same buckets.
    """
    group = _bucket_group(ranks_per_bucket)
    own = dist.get_rank() % ranks_per_bucket
    parts = [torch.empty_like(logits) for _ in range(ranks_per_bucket)]
    dist.all_gather(parts, logits.detach().contiguous(), group=group)
    parts[own] = _ScaleGrad.apply(logits, float(ranks_per_bucket))
    targets = [torch.empty_like(target) for _ in range(ranks_per_bucket)]
    dist.all_gather(targets, target.contiguous(), group=group)
    return torch.cat(parts), torch.cat(targets)


def split_buckets(logits: torch.Tensor, target: torch.Tensor,
                  bucket_size: Optional[int]):
    """Arrange a local batch ``(N, C)`` into buckets ``(B, M, C)``."""
    n = logits.size(0)
    if bucket_size is None or bucket_size == n:
        return logits.unsqueeze(0), target.unsqueeze(0)
    if bucket_size < n:
        if n % bucket_size:
            raise ValueError(
                f'TwoWayLoss: bucket_size={bucket_size} does not divide the '
                f'local batch of {n} samples. Use a bucket_size that divides '
                'the per-GPU batch size, and drop_last=True in the train '
                'dataloader so that the last batch is full too.')
        return (logits.reshape(-1, bucket_size, logits.size(-1)),
                target.reshape(-1, bucket_size, target.size(-1)))
    world = dist.get_world_size() if dist.is_initialized() else 1
    k = bucket_size // n
    if bucket_size % n or world % k:
        raise ValueError(
            f'TwoWayLoss: bucket_size={bucket_size} is larger than the local '
            f'batch of {n} samples, so a bucket spans bucket_size / batch '
            f'ranks; that must be a whole number dividing the world size '
            f'({world}). Set the per-GPU batch size and bucket_size so that '
            'it is, and drop_last=True in the train dataloader.')
    logits, target = gather_bucket(logits, target, k)
    return logits.unsqueeze(0), target.unsqueeze(0)


@MODELS.register_module()
class TwoWayLoss(nn.Module):
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
    """

    def __init__(self,
                 tp: float = 4.0,
                 tn: float = 1.0,
                 ways: str = 'both',
                 margin: float = 0.0,
                 bucket_size: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if ways not in WAYS:
            raise ValueError(f'TwoWayLoss: ways={ways!r} is not one of {WAYS}')
        if tp < 0 or tn < 0:
            raise ValueError(f'TwoWayLoss: temperatures must be >= 0, got '
                             f'tp={tp}, tn={tn}')
        if bucket_size is not None and (not isinstance(bucket_size, int)
                                        or bucket_size < 1):
            raise ValueError('TwoWayLoss: bucket_size must be None or a '
                             f'positive int, got {bucket_size!r}')
        self.tp, self.tn = float(tp), float(tn)
        self.ways = ways
        self.margin = float(margin)
        self.bucket_size = bucket_size
        self.loss_weight = loss_weight

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
                -1 (any negative value) ignored.
            weight (Tensor, optional): ``(N, C)`` or ``(N, 1)``; entries
                with weight 0 are ignored like ``target < 0``. The loss is
                not element-wise, so other values only mark an entry as
                present.
            avg_factor (float, optional): accepted for the mmpretrain head
                interface and unused: eq. 17 already averages over rows
                and columns, and the result is averaged over buckets.
            reduction_override (str, optional): ``'mean'`` (default) over
                buckets, ``'sum'`` over buckets, or ``'none'`` for the loss
                of every bucket.

        Returns:
            Tensor: the loss (a scalar unless reduction is ``'none'``).
        """
        if cls_score.dim() != 2 or cls_score.shape != target.shape:
            raise ValueError(
                'TwoWayLoss expects logits and targets of the same shape '
                f'(N, C), got {tuple(cls_score.shape)} and '
                f'{tuple(target.shape)}. Targets must be multi-hot '
                '(use gt_score, or a head that converts gt_label).')
        target = target.to(cls_score.device)
        if weight is not None:
            target = target.masked_fill(weight.expand_as(target) == 0, -1)
        logits, target = split_buckets(cls_score, target, self.bucket_size)
        per_bucket = two_way_loss(logits, target, self.tp, self.tn, self.ways,
                                  self.margin)
        reduction = reduction_override or 'mean'
        if reduction == 'mean':
            loss = per_bucket.mean()
        elif reduction == 'sum':
            loss = per_bucket.sum()
        elif reduction == 'none':
            loss = per_bucket
        else:
            raise ValueError(f'TwoWayLoss: unknown reduction {reduction!r}')
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'tp={self.tp}, tn={self.tn}, ways={self.ways!r}, '
                f'margin={self.margin}, bucket_size={self.bucket_size}')
