"""Base of the bucket losses: a subclass writes only its one-way loss."""
from typing import Callable, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn

from .utils import check_number, masked_mean, poison_nonfinite

#: ``(x, pos, neg, dim) -> (loss of every slice, slices that count)``
OneWay = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int],
                  Tuple[torch.Tensor, torch.Tensor]]


def ways_loss(logits: torch.Tensor, target: torch.Tensor, one_way: OneWay,
              ways: str) -> torch.Tensor:
    """Row mean and/or column mean of a one-way loss, for every bucket.

    A *one-way* loss maps one slice (a row: the classes of an image; or a
    column: the images of a class) to a number. ``'sample'`` averages it over
    rows, ``'class'`` over columns, ``'both'`` adds the two (eq. 17), and a
    slice it cannot score (e.g. without a positive) is left out of its
    average; ``'joint'`` (eq. 22) scores each bucket's whole matrix as one
    slice (0 if it cannot). A bucket with a non-finite logit or a NaN target
    gets a NaN loss (:func:`poison_nonfinite`), never a finite loss with NaN
    gradients; ``NonFiniteLossHook`` then stops the training run.

    Args:
        logits (Tensor): ``(..., M, C)``; leading dims are buckets.
        target (Tensor): same shape; > 0 positive, == 0 negative, < 0
            ignored.
        one_way (callable): ``(x, pos, neg, dim) -> (loss, valid)``.
        ways (str): ``'sample'`` (rows), ``'class'`` (columns), ``'both'``
            (their sum, eq. 17) or ``'joint'`` (eq. 22).

    Returns:
        Tensor: the loss of every bucket, computed in float32 (float64 stays
        float64): half-precision log-sum-exp loses the small differences
        these losses compare.
    """
    x = logits if logits.dtype == torch.float64 else logits.float()
    pos, neg = target > 0, target == 0
    if ways == 'joint':
        loss, valid = one_way(x.flatten(-2), pos.flatten(-2),
                              neg.flatten(-2), -1)
        return loss.masked_fill(~valid, 0.) + poison_nonfinite(x, target)
    total = x.new_zeros(x.shape[:-2])
    for way, dim in (('sample', -1), ('class', -2)):
        if ways in ('both', way):
            total = total + masked_mean(*one_way(x, pos, neg, dim))
    return total + poison_nonfinite(x, target)


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


def ranks_per_bucket(bucket_size: Optional[int], n: int, world: int) -> int:
    """How many ranks a bucket spans, or an error if the sizes cannot work.

    The one rule behind :func:`split_buckets`, also used before training
    starts (``TrainSettingsHook``) to check every batch size an epoch will
    have.

    Args:
        bucket_size (int, optional):
            M, or None (the local batch is one bucket).
        n (int): The local batch size.
        world (int): The number of processes.

    Returns:
        int: 1 when buckets are local (M <= n), else M / n.

    Raises:
        ValueError: M < n does not divide n, or M > n is not a multiple of
            n whose quotient divides ``world``.
    """
    if bucket_size is None or bucket_size == n:
        return 1
    if bucket_size < n:
        if n % bucket_size:
            raise ValueError(
                f'Bucket losses: bucket_size={bucket_size} does not divide '
                f'the local batch of {n} samples. Use a bucket_size that '
                'divides the per-GPU batch size, and drop_last=True in the '
                'train dataloader so that the last batch is full too.')
        return 1
    k = bucket_size // n
    if bucket_size % n or world % k:
        raise ValueError(
            f'Bucket losses: bucket_size={bucket_size} is larger than the '
            f'local batch of {n} samples, so a bucket spans bucket_size / '
            'batch ranks; that must be a whole number dividing the world '
            f'size ({world}). Set the per-GPU batch size and bucket_size so that '
            'it is, and drop_last=True in the train dataloader.')
    return k


def split_buckets(logits: torch.Tensor, target: torch.Tensor,
                  bucket_size: Optional[int]):
    """Arrange a local batch ``(N, C)`` into buckets ``(B, M, C)``."""
    n = logits.size(0)
    world = dist.get_world_size() if dist.is_initialized() else 1
    k = ranks_per_bucket(bucket_size, n, world)
    if bucket_size is None or bucket_size == n:
        return logits.unsqueeze(0), target.unsqueeze(0)
    if bucket_size < n:
        return (logits.reshape(-1, bucket_size, logits.size(-1)),
                target.reshape(-1, bucket_size, target.size(-1)))
    logits, target = gather_bucket(logits, target, k)
    return logits.unsqueeze(0), target.unsqueeze(0)


class BucketLoss(nn.Module):
    """Row-/column-wise loss on buckets of M images (abstract base).

    Subclasses implement :meth:`one_way`, their equation, and nothing else:
    the split of a local batch into buckets, buckets that span several ranks
    (a differentiable all-gather), the ways (:func:`ways_loss`) and the
    reduction over buckets (the loss of a batch is their mean, Sec. 4.1) are
    shared. Nothing synchronises with the host (no boolean indexing,
    ``nonzero`` or ``.item()``). ``forward`` takes mmpretrain's loss call
    signature, so a subclass is a drop-in ``loss=`` of mmpretrain heads.

    Args:
        ways (str): ``'sample'`` (rows), ``'class'`` (columns) or ``'both'``
            (their sum, as eq. 17).
        bucket_size (int, optional): M. None: the local (per-GPU) batch is
            one bucket. See ``TwoWayLoss`` for buckets smaller or larger
            than the local batch; only class-wise terms depend on it.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    #: The ways a bucket loss can be measured (Table 3).
    WAYS = ('both', 'sample', 'class')
    #: Whether a constant added to all logits leaves the loss unchanged
    #: (then the logits have no zero point to threshold).
    SHIFT_INVARIANT = False

    def __init__(self,
                 ways: str = 'both',
                 bucket_size: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        if ways not in self.WAYS:
            raise ValueError(
                f'{name}: ways={ways!r} is not one of {self.WAYS}')
        if bucket_size is not None and (
                isinstance(bucket_size, bool)
                or not isinstance(bucket_size, int) or bucket_size < 1):
            raise ValueError(f'{name}: bucket_size must be None or a '
                             f'positive int, got {bucket_size!r}')
        self.ways = ways
        self.bucket_size = bucket_size
        self.loss_weight = check_number(name, 'loss_weight', loss_weight)

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
        per_bucket = ways_loss(logits, target, self.one_way, self.ways)
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
