"""Helpers shared by the losses (and the head that calls them): masked
reductions that never read a value on the host, and float32 computation."""
import contextlib
from typing import ContextManager

import torch


def autocast_off(device: torch.device) -> ContextManager:
    """A context in which autocast is off on ``device``'s type.

    The losses compute in float32: under fp16 autocast, logs, powers and
    epsilons of probabilities near 0 or 1 underflow or overflow. Devices
    without autocast (e.g. ``meta``) get a context that does nothing.

    Args:
        device (torch.device): The device of the logits.

    Returns:
        ContextManager: ``torch.autocast(..., enabled=False)`` or a no-op.
    """
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


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


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the last dim of the ``valid`` entries; 0 if there are none."""
    total = values.masked_fill(~valid, 0.).sum(-1)
    return total / valid.sum(-1).clamp(min=1)
