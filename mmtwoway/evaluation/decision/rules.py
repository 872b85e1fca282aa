"""The rules that turn scores into label sets, and ``Decision``: two-way
logits have no zero point, so top-k, per-class thresholds or a margin below
the top score decide instead of ``logit > 0``."""
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .files import (CALIBRATE_HINT, CALIBRATED_RULES, RULES,
                    check_class_names, load_calibration)

ArrayLike = Union[torch.Tensor, np.ndarray]
ThresholdsLike = Union[float, Sequence[float], torch.Tensor, np.ndarray]


def as_scores_2d(scores: ArrayLike, name: str = 'scores') -> torch.Tensor:
    """``scores`` as a 2-D tensor on its own device.

    Args:
        scores (ArrayLike): (samples, classes) tensor or array.
        name (str): What they are, for the error message.

    Returns:
        torch.Tensor: The scores, 2-D.

    Raises:
        ValueError: If they are not 2-D.
    """
    scores = torch.as_tensor(scores)
    if scores.dim() != 2:
        raise ValueError(f'{name} must be 2-D (samples x classes), got shape '
                         f'{tuple(scores.shape)}')
    return scores


def topk_labels(scores: ArrayLike, k: int) -> torch.Tensor:
    """The ``k`` highest-scoring classes of every sample.

    Args:
        scores (ArrayLike): (N, C) scores.
        k (int): Classes per sample, ``>= 1``; more than C means all of them.
            Among tied scores the choice is ``torch.topk``'s.

    Returns:
        torch.Tensor: (N, C) bool mask of the decided labels.
    """
    scores = as_scores_2d(scores)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f'k (topk) must be an integer >= 1, got {k!r}')
    top = scores.topk(min(int(k), scores.shape[1]), dim=1).indices
    return torch.zeros(
        scores.shape, dtype=torch.bool, device=scores.device).scatter_(
            1, top, True)


def threshold_labels(scores: ArrayLike,
                     thresholds: ThresholdsLike) -> torch.Tensor:
    """Classes whose score reaches their threshold (``score >= thr``).

    The comparison runs in float64: calibrated thresholds lie halfway
    between two float32 scores, where a float32 copy could round onto the
    lower one.

    Args:
        scores (ArrayLike): (N, C) scores.
        thresholds (ThresholdsLike):
            One threshold for all classes, or C of them; ``+inf``
            (``None`` in a calibration file) never predicts the class.

    Returns:
        torch.Tensor: (N, C) bool mask of the decided labels.
    """
    scores = as_scores_2d(scores)
    thr = torch.as_tensor(thresholds, dtype=torch.float64).cpu()
    if thr.dim() > 1 or (thr.dim() == 1
                         and thr.numel() != scores.shape[1]):
        raise ValueError(f'thresholds must be one value or one per class '
                         f'({scores.shape[1]}), got shape {tuple(thr.shape)}')
    # Checked before the copy to the scores' device, where reading the
    # answer would wait for the GPU.
    if thr.isnan().any():
        raise ValueError('thresholds contain NaN')
    return scores.double() >= thr.to(scores.device, non_blocking=True)


def score_gaps(scores: ArrayLike) -> torch.Tensor:
    """How far every score lies below its sample's top score (float64).

    Args:
        scores (ArrayLike): (N, C) scores.

    Returns:
        torch.Tensor: (N, C) float64, ``max_c s[i, c] - s[i, c] >= 0``.
    """
    scores = as_scores_2d(scores).double()
    return scores.max(dim=1, keepdim=True).values - scores


def relative_labels(scores: ArrayLike, delta: float) -> torch.Tensor:
    """Classes scoring within ``delta`` of their sample's top score.

    The top class is always predicted, so no image gets an empty set.

    Args:
        scores (ArrayLike): (N, C) scores.
        delta (float): Finite, ``>= 0``, in score (logit) units.

    Returns:
        torch.Tensor: (N, C) bool mask of the decided labels.
    """
    try:
        value = float(delta)
    except (TypeError, ValueError):
        value = float('nan')
    if isinstance(delta, bool) or not np.isfinite(value) or value < 0:
        raise ValueError(f'delta must be a finite number >= 0, got {delta!r}')
    return score_gaps(scores) <= value



@dataclass(frozen=True)
class Decision:
    """A decision rule with its parameters.

    The rules keep the device of their input, so a head applies them on the
    GPU. ``tools/calibrate.py`` fits the thresholds and ``delta`` on a
    validation set (:mod:`.fitting`) and writes a calibration file that the
    head (``model.head.calibration=FILE``), ``MultiLabelF1``, the tools and
    the ONNX export read back with :meth:`from_file`.

    Args:
        rule (str): ``'topk'``, ``'thresholds'`` or ``'relative'``.
        k (int): Classes per image for ``'topk'``.
        thresholds (float | Tuple[float, ...], optional): For
            ``'thresholds'``: one float, or one per class
            (``inf`` never predicts a class).
        delta (float, optional): For ``'relative'``: the margin below the
            top score.
        classes (Tuple[str, ...], optional): The class names the
            parameters were fitted for, if known.
        source (str, optional): The calibration file it was read from, if
            any.
    """

    rule: str
    k: int = 1
    thresholds: Union[None, float, Tuple[float, ...]] = None
    delta: Optional[float] = None
    classes: Optional[Tuple[str, ...]] = None
    source: Optional[str] = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f'decision rule must be one of {RULES}, got '
                             f'{self.rule!r}')
        if self.rule == 'thresholds':
            if self.thresholds is None:
                raise ValueError("rule 'thresholds' needs thresholds")
            if not isinstance(self.thresholds, (int, float)):
                object.__setattr__(self, 'thresholds',
                                   tuple(float(t) for t in self.thresholds))
        if self.rule == 'relative' and self.delta is None:
            raise ValueError("rule 'relative' needs delta")
        if self.classes is not None:
            object.__setattr__(self, 'classes', tuple(self.classes))
            if isinstance(self.thresholds, tuple) and len(
                    self.thresholds) != len(self.classes):
                raise ValueError(
                    f'{self._where()}has {len(self.thresholds)} thresholds '
                    f'for {len(self.classes)} classes')
        # Fail at construction rather than at the first batch.
        probe = torch.zeros(1, self.num_classes or 1)
        self(probe)

    def _where(self) -> str:
        return f'calibration file {self.source} ' if self.source else ''

    @property
    def num_classes(self) -> Optional[int]:
        """The class count the parameters fix, if they fix one."""
        if self.classes is not None:
            return len(self.classes)
        if isinstance(self.thresholds, tuple):
            return len(self.thresholds)
        return None

    @property
    def calibrated(self) -> bool:
        """Whether the decision comes from a calibration file."""
        return self.source is not None

    def __call__(self, scores: ArrayLike) -> torch.Tensor:
        """The (N, C) bool mask of the labels decided for (N, C) scores."""
        if self.rule == 'topk':
            return topk_labels(scores, self.k)
        if self.rule == 'thresholds':
            return threshold_labels(scores, self.thresholds)
        return relative_labels(scores, self.delta)

    def describe(self) -> str:
        """One line that says how labels are decided, for logs and files."""
        origin = (f' from {self.source}'
                  if self.source else ' (set in the config)')
        if self.rule == 'topk':
            return (f'top-{self.k} per image (uncalibrated: no calibration '
                    'file is set; two-way logits have no zero point to '
                    'threshold)')
        if self.rule == 'relative':
            return (f'relative: classes within {self.delta:.4g} of the '
                    f"image's top score{origin}")
        if isinstance(self.thresholds, tuple):
            return f'per-class thresholds{origin}'
        return f'one threshold {self.thresholds:g} for all classes{origin}'

    def check_num_classes(self, num_classes: int, what: str) -> None:
        """Raise unless the decision fits ``num_classes`` classes.

        Args:
            num_classes (int): The class count of ``what``.
            what (str): Who has that count, for the message (e.g. 'the head').
        """
        if self.num_classes is not None and self.num_classes != num_classes:
            raise ValueError(
                f'{self._where() or "the decision "}has {self.num_classes} '
                f'classes but {what} has {num_classes}: it was calibrated '
                f'for another model; {CALIBRATE_HINT}.')

    def check_classes(self, classes: Optional[Sequence[str]],
                      what: str) -> None:
        """Raise if the decision was fitted for another class list.

        Args:
            classes (Sequence[str], optional):
                The class names of ``what``, in index order, or None
                (nothing to check).
            what (str): Whose classes they are, for the message.
        """
        check_class_names(self.classes, classes,
                          self._where() or 'the decision ', what)

    @classmethod
    def from_file(cls,
                  path: str,
                  num_classes: Optional[int] = None,
                  rule: Optional[str] = None) -> 'Decision':
        """Read a calibration file.

        Args:
            path (str): A JSON file written by :func:`save_calibration`.
            num_classes (int, optional):
                The class count of the model, checked if given.
            rule (str, optional):
                ``'thresholds'`` or ``'relative'`` to override the file's
                own ``rule``.

        Returns:
            Decision: the file's rule, its class names and ``source=path``.

        Raises:
            FileNotFoundError, ValueError: With the path and what to do.
        """
        data = load_calibration(path)
        rule = rule or data['rule']
        if rule not in CALIBRATED_RULES:
            raise ValueError(f'calibration file {path}: rule must be one of '
                             f'{CALIBRATED_RULES}, got {rule!r}')
        if rule == 'thresholds':
            thresholds = tuple(
                math.inf if t is None else float(t)
                for t in data['thresholds'])
            decision = cls('thresholds', thresholds=thresholds,
                           classes=data['classes'], source=path)
        else:
            if data.get('delta') is None:
                raise ValueError(f'calibration file {path} has no delta for '
                                 "the 'relative' rule")
            decision = cls('relative', delta=float(data['delta']),
                           classes=data['classes'], source=path)
        if num_classes is not None:
            decision.check_num_classes(num_classes, 'the model')
        return decision
