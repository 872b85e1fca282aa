"""Helpers shared by the losses (and the head that calls them): masked
reductions that never read a value on the host, and float32 computation."""
import contextlib
import math
import numbers
from typing import ContextManager, Optional

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


def check_number(owner: str, name: str, value, minimum: Optional[float] = None
                 ) -> float:
    """``value`` as a float if it is a finite real number ``>= minimum``.

    Args:
        owner (str): The class whose argument it is, for the message.
        name (str): The argument's name.
        value (Any): What the config gave.
        minimum (float, optional): The smallest allowed value, if any.

    Returns:
        float: ``value``.

    Raises:
        TypeError: ``value`` is not a real number (e.g. the string ``'4'``
            or a bool).
        ValueError: It is NaN, infinite or below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{owner}: {name} must be a number, got {value!r} '
                        f'({type(value).__name__}); write e.g. {name}=4.0, '
                        'without quotes.')
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f' >= {minimum}' if minimum is not None else ''
        raise ValueError(f'{owner}: {name} must be a finite number{bound}, '
                         f'got {value!r}.')
    return float(value)


def poison_nonfinite(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0 for every bucket whose input is legal, NaN for the others.

    The rule for non-finite input: a bucket with a logit that is +-inf or
    NaN, or with a NaN target, gets a NaN loss. Without this term an +inf
    logit on a row's only positive gives a finite loss and a NaN gradient
    (the log-sum-exp of a lone -inf), which would reach the weights
    unnoticed. ``x * 0`` is exactly 0 for finite logits (any magnitude,
    1e30 included) and NaN otherwise, and its gradient is 0, so legal input
    keeps its value and gradient bit for bit. No host synchronisation.

    Args:
        x (torch.Tensor): ``(..., M, C)`` float logits.
        target (torch.Tensor): Targets of the same shape.

    Returns:
        Tensor: ``x.shape[:-2]``, 0 or NaN; add it to the bucket losses.
    """
    bad = x.mul(0.)
    if target.is_floating_point():
        bad = bad.masked_fill(target.isnan(), float('nan'))
    return bad.sum((-2, -1))
