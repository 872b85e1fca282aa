"""Reading original annotation files with errors that say what is wrong: a
missing file names the expected layout, a malformed one its path and record.
"""
import json
import math
import os.path as osp
from typing import Any, Callable, List, Sequence, Union


def join_files(data_root: str, files: Union[str, Sequence[str]],
               name: str) -> List[str]:
    """Join one or several paths (files or folders) to ``data_root``.

    Args:
        data_root (str): The dataset root ('' for none).
        files (str | Sequence[str]): Path(s), relative to ``data_root`` or
            absolute.
        name (str): The dataset name, for the error.

    Returns:
        list[str]: The joined paths, in order.

    Raises:
        ValueError: ``files`` is empty or not made of strings.
    """
    files = [files] if isinstance(files, str) else list(files)
    if not files or not all(isinstance(f, str) and f for f in files):
        raise ValueError(f'{name}: expected a path or a non-empty list of '
                         f'paths, got {files!r}')
    files = [osp.expanduser(f) for f in files]
    return [
        f if not data_root or osp.isabs(f) else osp.join(data_root, f)
        for f in files
    ]


def check_files_exist(paths: Sequence[str], name: str, layout: str) -> None:
    """Raise ``FileNotFoundError`` naming the first missing annotation file.

    Args:
        paths (Sequence[str]): Annotation files.
        name (str): The dataset name.
        layout (str): The expected folder layout, quoted in the error.
    """
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{name}: annotation file "{path}" not found. {layout}')


def load_json(path: str, name: str, layout: str) -> Any:
    """Read a JSON file.

    Args:
        path (str): The file.
        name (str): The dataset name.
        layout (str): The expected layout, quoted if the file is missing.

    Returns:
        Any: The parsed content.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not valid UTF-8 JSON.
    """
    check_files_exist([path], name, layout)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        # json.JSONDecodeError is a ValueError.
        raise ValueError(f'{name}: "{path}" is not valid JSON ({err}). '
                         'Re-download or re-extract it.') from err


def parse_box(value: Any, where: Callable[[], str]) -> List[float]:
    """Check an annotation box ``[x, y, w, h]`` and return it as floats.

    Only the type is checked here; whether the box is usable (inside the
    image, not degenerate) is the instance datasets' box rule.

    Args:
        value (Any): The box as read from the file.
        where (Callable): Names the file and record, for the error.

    Returns:
        list[float]: ``[x, y, w, h]``.

    Raises:
        ValueError: Not a list of four finite numbers.
    """
    if (not isinstance(value, (list, tuple)) or len(value) != 4
            or not all(_is_number(v) and math.isfinite(v) for v in value)):
        raise ValueError(f'{where()}: the box {value!r} is not four finite '
                         'numbers [x, y, w, h].')
    return [float(v) for v in value]


def record_id(value: Any, key: str, where: Callable[[], str]) -> str:
    """An id that files give as an int or a string, as a string.

    Args:
        value (Any): The id as read (``2373241`` or ``"2373241"``).
        key (str): The id's key, for the error.
        where (Callable): Names the file and record, for the error.

    Returns:
        str: The id as text (``'2373241'`` for both spellings).

    Raises:
        ValueError: Neither a (whole) number nor a non-empty string.
    """
    if isinstance(value, str) and value.strip():
        return value.strip()
    if _is_number(value) and float(value).is_integer():
        return str(int(value))
    raise ValueError(f'{where()}: "{key}" is {value!r}; expected an integer '
                     'or a non-empty string.')


def _is_number(value: Any) -> bool:
    """An int or float, but not a bool (JSON true/false)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_classes(name: str, given: Any, names: Sequence[str],
                  source: str) -> None:
    """Refuse user-given class names that differ from the file's.

    Labels are indices into the annotation's own class list; other names
    would silently mislabel every class.

    Args:
        name (str): The dataset name.
        given (Any): ``metainfo['classes']`` as the user set it, or None.
        names (Sequence[str]): The class names read from ``source``.
        source (str): The file that defines the classes.

    Raises:
        ValueError: ``given`` is set and differs from ``names``.
    """
    if given is not None and tuple(given) != tuple(names):
        raise ValueError(
            f'{name}: `classes` ({len(tuple(given))} names, starting '
            f'{tuple(given)[:3]}) differ from the {len(names)} classes of '
            f'"{source}" (starting {tuple(names)[:3]}). Leave `classes` '
            'unset: they are read from that file.')
