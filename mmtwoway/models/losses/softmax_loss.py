"""Softmax cross-entropy with normalised labels (eq. 18; Tables 3b and 7)."""
from typing import Optional, Tuple

import torch
from mmpretrain.registry import MODELS

from .bucket_loss import BucketLoss
from .utils import soft_max


@MODELS.register_module()
class NormalizedSoftmaxLoss(BucketLoss):
    r"""Softmax cross-entropy on labels normalised to sum to one (eq. 18).

    Sample-wise, for image :math:`i` with labels :math:`y_{ic}`:

    .. math::
        \ell_i = -\sum_c \tilde y_{ic}
                 \log \frac{e^{x_{ic}}}{\sum_{c'} e^{x_{ic'}}},
        \qquad \tilde y_{ic} = \frac{y_{ic}}{\sum_{c'} y_{ic'}},

    i.e. ``logsumexp(x_i) - sum_c y~_ic x_ic``. Class-wise (Table 3b) the
    same loss runs down column :math:`c` of a bucket, a softmax over its M
    images with :math:`\tilde y_{ic} = y_{ic} / \sum_j y_{jc}`; ``'both'``
    adds the mean over rows to the mean over columns, as eq. 17 does.

    Ignored labels (target < 0) are in neither the numerator nor the
    softmax's denominator: an unknown label might be a positive, so it is
    not pushed down, exactly as the two-way loss leaves it out. A row or
    column without positives has no normalised label and is left out of
    its mean; a bucket with no positive at all gives 0 (attached to the
    graph, never NaN).

    Table 7's "Softmax" rows are the sample-wise loss (Table 3b's sample
    column reproduces them: 58.00 / 83.60 on COCO, ResNet-50), hence the
    default ``ways='sample'``.

    Args:
        ways (str): ``'sample'`` (default), ``'class'`` or ``'both'``.
        bucket_size (int, optional): M for the class-wise softmax; None
            makes the local batch one bucket.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    #: A softmax ignores a constant added to all logits: no zero point.
    SHIFT_INVARIANT = True

    def __init__(self,
                 ways: str = 'sample',
                 bucket_size: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__(
            ways=ways, bucket_size=bucket_size, loss_weight=loss_weight)

    def one_way(self, x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Eq. 18 on every slice along ``dim``; slices with positives count."""
        log_partition = soft_max(x, pos | neg, 1.0, dim)
        n_pos = pos.sum(dim, keepdim=True).clamp(min=1)
        expected = (x.masked_fill(~pos, 0.) / n_pos).sum(dim)
        return log_partition - expected, pos.any(dim)
