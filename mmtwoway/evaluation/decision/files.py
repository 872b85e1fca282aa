"""The calibration file: format, reading, writing, and the class check that
keeps it from being applied to a model or dataset with other classes.
"""
import json
import math
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence

from mmtwoway.utils.misc import json_safe

CALIBRATION_FORMAT = 'mmtwoway-calibration'
CALIBRATION_VERSION = 1
RULES = ('topk', 'thresholds', 'relative')
# The rules a calibration file may select.
CALIBRATED_RULES = ('thresholds', 'relative')

CALIBRATE_HINT = ('run `python tools/calibrate.py CONFIG CHECKPOINT` for '
                   'this model and point model.head.calibration (or '
                   '--thresholds) at the file it writes')


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
            f'{CALIBRATE_HINT}.')
    if fitted != classes:
        i = next(i for i, (a, b) in enumerate(zip(fitted, classes))
                 if a != b)
        raise ValueError(
            f'{where}is for another class list than {what}: class {i} is '
            f'{fitted[i]!r} there but {classes[i]!r} here; '
            f'{CALIBRATE_HINT}.')


def load_calibration(path: str) -> Dict[str, Any]:
    """The content of a calibration file, checked.

    The file (JSON, written by :func:`save_calibration`)::

        {
          "format": "mmtwoway-calibration", "version": 1,
          "rule": "thresholds",              # or "relative": the rule to use
          "classes": ["person", ...],        # C names, in class-index order
          "thresholds": [1.25, ..., null],   # C floats; null: never predicted
          "delta": 3.1,                      # for "relative"
          "validation": {...}                # what calibrate.py measured
        }

    Args:
        path (str): The JSON file.

    Returns:
        dict: The file's fields.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If it is not a calibration file of this version, or its
            classes and thresholds disagree.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'calibration file {path} does not exist; '
                                f'{CALIBRATE_HINT}.')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'calibration file {path} is not valid JSON: {err}')
    if not isinstance(data, dict) or data.get(
            'format') != CALIBRATION_FORMAT:
        raise ValueError(f'{path} is not an mmtwoway calibration file (no '
                         f'"format": "{CALIBRATION_FORMAT}"); '
                         f'{CALIBRATE_HINT}.')
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
