"""How a model turns scores into labels: rules, ``Decision``, its file.

A model trained with the two-way loss has logits without a zero point (the
loss is invariant to adding a constant to all of them), so ``logit > 0`` or
``sigmoid(logit) > 0.5`` is an arbitrary cut. Three rules turn scores into
label sets instead:

* top-k: the ``k`` highest-scoring classes of each image;
* per-class thresholds: class c is predicted when its score is ``>=
  thr[c]``;
* relative: the classes scoring within ``delta`` of the image's top score.

A :class:`Decision` is one rule with its parameters. ``tools/calibrate.py``
fits the thresholds and ``delta`` on a validation set
(:mod:`mmtwoway.evaluation.functional.decision`) and writes them to a
calibration file; the head (``model.head.calibration=FILE``), the
``MultiLabelF1`` metric, ``tools/predict.py``, ``tools/visualize.py`` and
the ONNX export read it back here. The rules keep the device of their
input, so a head applies them on the GPU.

Calibration file (JSON, written by :func:`save_calibration`)::

    {
      "format": "mmtwoway-calibration", "version": 1,
      "rule": "thresholds",              # or "relative": the rule to use
      "classes": ["person", ...],        # C names, in class-index order
      "thresholds": [1.25, ..., null],   # C floats; null: never predicted
      "delta": 3.1,                      # for "relative"
      "validation": {...}                # what calibrate.py measured
    }

A file records the class names it was fitted on, so that it is never
applied to a model or dataset with another class list.
"""
import json
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

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


CALIBRATION_FORMAT = 'mmtwoway-calibration'
CALIBRATION_VERSION = 1
RULES = ('topk', 'thresholds', 'relative')
# The rules a calibration file may select.
CALIBRATED_RULES = ('thresholds', 'relative')

_CALIBRATE_HINT = ('run `python tools/calibrate.py CONFIG CHECKPOINT` for '
                   'this model and point model.head.calibration (or '
                   '--thresholds) at the file it writes')


@dataclass(frozen=True)
class Decision:
    """A decision rule with its parameters.

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
                f'for another model; {_CALIBRATE_HINT}.')

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


def check_class_names(fitted: Optional[Sequence[str]],
                      classes: Optional[Sequence[str]], where: str,
                      what: str) -> None:
    """Raise if a calibration was fitted for another class list.

    Nothing is checked when either side has no class names.

    Args:
        fitted (Sequence[str], optional):
            The class names the calibration was fitted for.
        classes (Sequence[str], optional):
            The class names of ``what``, in index order.
        where (str): The calibration, for the message (e.g. 'calibration file
            x.json ').
        what (str): Whose classes ``classes`` are (e.g. 'the dataset').
    """
    if fitted is None or classes is None:
        return
    fitted, classes = tuple(fitted), tuple(classes)
    if len(fitted) != len(classes):
        raise ValueError(
            f'{where}has {len(fitted)} classes but {what} has '
            f'{len(classes)}: it is for another class list; '
            f'{_CALIBRATE_HINT}.')
    if fitted != classes:
        i = next(i for i, (a, b) in enumerate(zip(fitted, classes))
                 if a != b)
        raise ValueError(
            f'{where}is for another class list than {what}: class {i} is '
            f'{fitted[i]!r} there but {classes[i]!r} here; '
            f'{_CALIBRATE_HINT}.')


def load_calibration(path: str) -> Dict[str, Any]:
    """The content of a calibration file, checked.

    Args:
        path (str): The JSON file.

    Returns:
        dict: The file's fields (see the module docstring).

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If it is not a calibration file of this version, or its
            classes and thresholds disagree.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'calibration file {path} does not exist; '
                                f'{_CALIBRATE_HINT}.')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'calibration file {path} is not valid JSON: {err}')
    if not isinstance(data, dict) or data.get(
            'format') != CALIBRATION_FORMAT:
        raise ValueError(f'{path} is not an mmtwoway calibration file (no '
                         f'"format": "{CALIBRATION_FORMAT}"); '
                         f'{_CALIBRATE_HINT}.')
    if data.get('version') != CALIBRATION_VERSION:
        raise ValueError(f'calibration file {path} has version '
                         f'{data.get("version")!r}; this mmtwoway reads '
                         f'version {CALIBRATION_VERSION}: calibrate again.')
    for key in ('rule', 'classes', 'thresholds'):
        if key not in data:
            raise ValueError(f'calibration file {path} has no "{key}"')
    if len(data['thresholds']) != len(data['classes']):
        raise ValueError(f'calibration file {path} has '
                         f'{len(data["thresholds"])} thresholds for '
                         f'{len(data["classes"])} classes')
    return data


def json_safe(value: Any) -> Any:
    """``value`` with tensors as lists and non-finite floats as ``None``.

    Args:
        value (Any):
            Nested dicts / lists / tuples of numbers, strings, tensors.

    Returns:
        The same structure, writable as strict JSON.
    """
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_calibration(path: str,
                     classes: Sequence[str],
                     thresholds: Sequence[float],
                     delta: float,
                     rule: str = 'thresholds',
                     validation: Optional[Dict[str, Any]] = None) -> None:
    """Write a calibration file.

    Args:
        path (str): Output JSON file (its folder is created).
        classes (Sequence[str]): The C class names, in index order.
        thresholds (Sequence[float]):
            C per-class thresholds; ``inf`` is written as ``null``.
        delta (float): The calibrated margin of the relative rule.
        rule (str): Which of the two the file selects.
        validation (Dict[str, Any], optional):
            What was measured on the calibration set.
    """
    if rule not in CALIBRATED_RULES:
        raise ValueError(f'rule must be one of {CALIBRATED_RULES}, got '
                         f'{rule!r}')
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != len(classes):
        raise ValueError(f'{len(thresholds)} thresholds for {len(classes)} '
                         'classes')
    data = dict(
        format=CALIBRATION_FORMAT,
        version=CALIBRATION_VERSION,
        rule=rule,
        classes=list(classes),
        thresholds=[None if t == math.inf else t for t in thresholds],
        delta=float(delta),
        validation=json_safe(validation or {}))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        # allow_nan=False: the file stays strict JSON for other readers.
        json.dump(data, f, indent=1, allow_nan=False)
        f.write('\n')
