"""Multi-similarity loss with temperatures (eq. 20-21; Table 4a)."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .bucket_loss import BucketLoss
from .utils import soft_max


@MODELS.register_module()
class MultiSimilarityLoss(BucketLoss):
    r"""Multi-similarity loss [31] on logits, with the temperatures of eq. 14.

    Eq. 20 treats logit :math:`x_c` as the similarity of an image to class
    :math:`c`:

    .. math::
        \ell_{ms} = \log\Bigl(1 + \sum_{p\in\mathcal P} e^{-x_p}\Bigr)
                  + \log\Bigl(1 + \sum_{n\in\mathcal N} e^{x_n}\Bigr),

    which eq. 21 rewrites as a BCE on the soft hardest positive and
    negative. Table 4a applies the paper's temperature to it ("for fair
    comparison"), which gives

    .. math::
        \ell = \mathrm{softplus}\Bigl(T_P \log \sum_p e^{-x_p / T_P}\Bigr)
             + \mathrm{softplus}\Bigl(T_N \log \sum_n e^{x_n / T_N}\Bigr);

    :math:`T_P = T_N = 1` is eq. 20 itself. Unlike the two-way loss it keeps
    the sigmoid's zero point: positives are pushed above 0 and negatives
    below, not merely above each other.

    A term without members (an image with no positive, say) is 0. A slice
    counts in its mean if it has at least one labelled entry; ignored
    labels (target < 0) are in neither sum.

    Args:
        tp (float): positive temperature :math:`T_P` (Table 4a: 1, 2, 4).
            0 is the hard minimum. Defaults to 1.0.
        tn (float): negative temperature :math:`T_N`. Defaults to 1.0.
        ways (str): ``'sample'`` (default: eq. 20 per image, as Table 4a),
            ``'class'`` or ``'both'``.
        bucket_size (int, optional): M for the class-wise way.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 tp: float = 1.0,
                 tn: float = 1.0,
                 ways: str = 'sample',
                 bucket_size: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__(
            ways=ways, bucket_size=bucket_size, loss_weight=loss_weight)
        if tp < 0 or tn < 0:
            raise ValueError('MultiSimilarityLoss: temperatures must be >= 0,'
                             f' got tp={tp}, tn={tn}')
        self.tp, self.tn = float(tp), float(tn)

    def one_way(self, x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Eq. 21 with temperatures on every slice along ``dim``."""
        # An empty set pools to -inf, and softplus(-inf) = 0 with a zero
        # gradient: the term vanishes.
        hard_pos = soft_max(-x, pos, self.tp, dim)
        hard_neg = soft_max(x, neg, self.tn, dim)
        loss = F.softplus(hard_pos) + F.softplus(hard_neg)
        return loss, (pos | neg).any(dim)

    def extra_repr(self) -> str:
        return f'tp={self.tp}, tn={self.tn}, ' + super().extra_repr()
