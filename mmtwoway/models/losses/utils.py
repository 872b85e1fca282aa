"""Helpers shared by the losses (and the head that calls them)."""
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
