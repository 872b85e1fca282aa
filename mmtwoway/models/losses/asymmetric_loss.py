"""ASL [2] as its official code trains it: the focusing weight detached."""
import torch
from mmpretrain.registry import MODELS

from .ignore_label_loss import ElementwiseLabelledLoss


@MODELS.register_module()
class OfficialAsymmetricLoss(ElementwiseLabelledLoss):
    r"""Asymmetric loss [2] with the official implementation's gradient.

    Asymmetric loss (Ben-Baruch et al., ICCV 2021), per entry with
    :math:`p = \sigma(x)` and the shifted probability
    :math:`p_m = \max(p - m, 0)` of a negative:

    .. math::
        \ell^+ = -(1 - p)^{\gamma_+} \log p, \qquad
        \ell^- = -p_m^{\gamma_-} \log (1 - p_m).

    The official code (``AsymmetricLoss(disable_torch_grad_focal_loss=True)``,
    the default of its class and what its training script passes) computes the
    focusing weight :math:`w = (1 - p_t)^{\gamma}` with autograd disabled, so
    the gradient is :math:`w` times the plain (clipped) cross-entropy gradient,
    :math:`-w (1 - p)` for a positive and :math:`w\, p (1 - p) / (1 - p_m)`
    for a negative with :math:`p > m`. mmpretrain's ``AsymmetricLoss`` lets the
    gradient flow through :math:`w` as well, which adds
    :math:`\gamma_- p_m^{\gamma_- - 1} p (1 - p) (-\log(1 - p_m))` to a
    negative's gradient: a larger push on hard negatives.
    :class:`OfficialAsymmetricLoss` does either (``detach_focusing_weight``).

    Values equal mmpretrain's ``AsymmetricLoss``; with
    ``detach_focusing_weight=True`` (default, the official
    ``disable_torch_grad_focal_loss=True``) no gradient flows through the
    focusing weight, with ``False`` the gradient is mmpretrain's. Entries
    with target < 0 give neither loss nor gradient; the ``(N, C)`` losses
    are summed and divided by the head's ``avg_factor`` (the batch size),
    like mmpretrain's losses in its heads. Computed in float32.

    Example:
        ``loss=dict(type='OfficialAsymmetricLoss', gamma_pos=0.0,
        gamma_neg=4.0, clip=0.05)``

    Args:
        gamma_pos (float): focusing exponent of positives. Defaults to 0.
        gamma_neg (float): focusing exponent of negatives. Defaults to 4.
        clip (float): probability margin m of negatives; 0 disables it.
            Defaults to 0.05.
        eps (float): lower clamp of the probabilities inside the logs.
            Defaults to 1e-8 (as both implementations).
        detach_focusing_weight (bool): whether the focusing weight is a
            constant for autograd (official ASL). Defaults to True.
        reduction (str): ``'mean'`` (default) or ``'sum'``.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.

    Raises:
        ValueError: for a negative exponent, or a clip outside [0, 1).
    """

    def __init__(self,
                 gamma_pos: float = 0.0,
                 gamma_neg: float = 4.0,
                 clip: float = 0.05,
                 eps: float = 1e-8,
                 detach_focusing_weight: bool = True,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction=reduction, loss_weight=loss_weight)
        if gamma_pos < 0 or gamma_neg < 0:
            raise ValueError('OfficialAsymmetricLoss: gamma_pos and gamma_neg '
                             f'must be >= 0, got {gamma_pos} and {gamma_neg}.')
        if not 0 <= clip < 1:
            raise ValueError('OfficialAsymmetricLoss: clip must be in [0, 1), '
                             f'got {clip}.')
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.clip = float(clip)
        self.eps = float(eps)
        self.detach_focusing_weight = bool(detach_focusing_weight)

    def element_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """ASL of every entry for 0/1 float targets ``y``."""
        p = torch.sigmoid(x)
        q = 1 - p  # probability of "negative"
        if self.clip > 0:
            q = (q + self.clip).clamp(max=1)  # 1 - p_m
        # p_t: the probability of the entry's own label.
        p_t = p * y + q * (1 - y)
        loss = -torch.log(p_t.clamp(min=self.eps))
        if self.gamma_pos > 0 or self.gamma_neg > 0:
            gamma = self.gamma_pos * y + self.gamma_neg * (1 - y)
            weight = torch.pow(1 - p_t, gamma)
            if self.detach_focusing_weight:
                weight = weight.detach()
            loss = loss * weight
        return loss

    def extra_repr(self) -> str:
        return (f'gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, '
                f'clip={self.clip}, detach_focusing_weight='
                f'{self.detach_focusing_weight}')
