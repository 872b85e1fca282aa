"""Small helpers shared across mmtwoway: JSON values and short listings."""
import math
from typing import Any, Sequence

import numpy as np
import torch


def json_safe(value: Any) -> Any:
    """``value`` in plain JSON types, as it reads back from a strict file.

    Tensors and arrays become lists, tuples lists, dict keys strings and
    non-finite floats ``None``, so a value built in one run and one read
    back from a file in another are the same objects.

    Args:
        value (Any): Nested dicts / lists / tuples of numbers, strings,
            tensors and arrays (e.g. a ``ConfigDict``).

    Returns:
        The same structure, writable with ``json.dump(allow_nan=False)``.

    Raises:
        ValueError: A value has no JSON form (e.g. a function).
    """
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f'{value!r} has no JSON form; use plain values '
                     '(numbers, strings, lists, dicts).')


def listing(items: Sequence, limit: int = 5, sep: str = ', ') -> str:
    """The first ``limit`` items joined by ``sep``, and how many more.

    Args:
        items (Sequence): What to list; each is shown with ``str``.
        limit (int): How many to show.
        sep (str): The separator.

    Returns:
        str: e.g. ``'a, b, c, ... and 4 more'``.
    """
    shown = sep.join(str(item) for item in items[:limit])
    more = len(items) - limit
    return shown + (f'{sep}... and {more} more' if more > 0 else '')
