"""Readers of the Open Images files: class lists, image lists, label CSVs.

Errors name the file and 1-based line; labels go into compact arrays.
"""
import array
import csv
import math
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

_NAME = 'OpenImagesMultiLabel'
# Image IDs are 64-bit numbers written as 16 lower-case hex digits.
_IMAGE_ID = re.compile(r'[0-9a-f]{16}')
# A class id (MID) of the Knowledge Graph: /m/... or /g/...
_MID = re.compile(r'/[mg]/[0-9a-z_]+')
# Quarter turns of the allowed Rotation values (degrees counterclockwise).
_QUARTERS = {0.0: 0, 90.0: 1, 180.0: 2, 270.0: 3}
LABEL_COLUMNS = ('ImageID', 'LabelName', 'Confidence')
IMAGE_COLUMNS = ('ImageID', )


def parse_image_id(text: str, where: str) -> int:
    """The 64-bit integer of a 16-hex-digit image ID.

    Args:
        text (str): The ID as written in the file.
        where (str): File and line, for the error.

    Returns:
        int: The ID as an unsigned integer.

    Raises:
        ValueError: The ID is not 16 lower-case hex digits.
    """
    if not _IMAGE_ID.fullmatch(text):
        raise ValueError(f'{_NAME}: {where}: malformed ImageID {text!r}; '
                         'Open Images IDs are 16 lower-case hex digits '
                         '(e.g. 000002b66c9c498e).')
    return int(text, 16)


def format_image_id(value: int) -> str:
    """The 16-hex-digit ImageID of a stored integer."""
    return f'{int(value):016x}'


def _open_rows(path: str):
    """``(reader, file)`` of a CSV file (UTF-8, BOM tolerated)."""
    try:
        f = open(path, encoding='utf-8-sig', newline='')
    except FileNotFoundError:
        raise FileNotFoundError(
            f'{_NAME}: file "{path}" not found. Download it from the Open '
            'Images site (see docs/openimages.md) or fix the path '
            '(relative to data_root).') from None
    return csv.reader(f), f


def _header(reader, path: str, needed: Tuple[str, ...]) -> Dict[str, int]:
    """Column name -> position of the header row; all ``needed`` present."""
    header = next(reader, None)
    if header is None:
        raise ValueError(f'{_NAME}: "{path}" is empty; expected a header row '
                         f'with the columns {list(needed)}.')
    columns = {name.strip(): i for i, name in enumerate(header)}
    absent = [name for name in needed if name not in columns]
    if absent:
        raise ValueError(f'{_NAME}: "{path}", line 1: the header {header} '
                         f'has no column {absent}; expected at least '
                         f'{list(needed)} (the published layout).')
    return columns


def read_class_descriptions(path: str) -> Dict[str, str]:
    """MID -> display name of a class descriptions CSV.

    ``oidv6-class-descriptions.csv`` starts with the header
    ``LabelName,DisplayName``; the older ``class-descriptions.csv`` has no
    header. A first row whose first cell is not a MID is taken as a header.

    Args:
        path (str): The CSV file.

    Returns:
        dict: MID -> display name, in file order.

    Raises:
        ValueError: A row is not ``MID,name`` or a MID repeats.
    """
    reader, f = _open_rows(path)
    names: Dict[str, str] = {}
    with f:
        for line, row in enumerate(reader, 1):
            if line == 1 and row and not _MID.fullmatch(row[0].strip()):
                continue  # the header of the V6 file
            if not row:
                continue
            if len(row) < 2 or not _MID.fullmatch(row[0].strip()):
                raise ValueError(
                    f'{_NAME}: "{path}", line {line}: expected '
                    f'"MID,DisplayName" (e.g. /m/01g317,Person), got {row}.')
            mid = row[0].strip()
            if mid in names:
                raise ValueError(f'{_NAME}: "{path}", line {line}: class '
                                 f'{mid} is listed twice.')
            names[mid] = row[1].strip()
    if not names:
        raise ValueError(f'{_NAME}: "{path}" lists no class.')
    return names


def read_trainable(path: str, known: Dict[str, str],
                   descriptions: str) -> List[str]:
    """The MIDs of a trainable-class list, one per line, in file order.

    Args:
        path (str): ``oidv6-classes-trainable.txt`` (older:
            ``classes-trainable.txt``).
        known (dict): The class descriptions.
        descriptions (str): Their file, for the error.

    Returns:
        list[str]: The MIDs (= class index order).

    Raises:
        ValueError: A line is not a MID, a MID repeats or is not described.
    """
    reader, f = _open_rows(path)
    mids: Dict[str, int] = {}
    with f:
        for line, row in enumerate(reader, 1):
            if not row or not row[0].strip():
                continue
            mid = row[0].strip()
            if not _MID.fullmatch(mid) or len(row) > 1:
                raise ValueError(f'{_NAME}: "{path}", line {line}: expected '
                                 f'one MID per line (e.g. /m/01g317), got '
                                 f'{row}.')
            if mid in mids:
                raise ValueError(f'{_NAME}: "{path}", line {line}: class '
                                 f'{mid} is listed twice (line {mids[mid]}).')
            if mid not in known:
                raise ValueError(f'{_NAME}: "{path}", line {line}: class '
                                 f'{mid} is not in "{descriptions}". Use the '
                                 'class descriptions of the same release.')
            mids[mid] = line
    if not mids:
        raise ValueError(f'{_NAME}: "{path}" lists no class.')
    return list(mids)


def read_image_list(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Image IDs and quarter turns of an image-ID file.

    The files ``*-images-with-rotation.csv`` (and
    ``oidv6-train-images-with-labels-with-rotation.csv``) have a header
    with ``ImageID`` and ``Rotation``: degrees (0, 90, 180, 270) that the
    image must be rotated counterclockwise, empty or ``nan`` when unknown
    (taken as 0). A file without ``Rotation`` gives 0 for every image.

    Args:
        path (str): The CSV file.

    Returns:
        tuple: ``(ids, quarters)``: uint64 IDs and int8 quarter turns
        (0..3), in file order.

    Raises:
        ValueError: A malformed ID or rotation, or an ID listed twice.
    """
    reader, f = _open_rows(path)
    ids, turns = array.array('Q'), array.array('b')
    with f:
        columns = _header(reader, path, IMAGE_COLUMNS)
        id_col, rot_col = columns['ImageID'], columns.get('Rotation')
        for line, row in enumerate(reader, 2):
            where = f'"{path}", line {line}'
            if len(row) <= max(id_col, rot_col or 0):
                raise ValueError(f'{_NAME}: {where}: expected '
                                 f'{len(columns)} columns, got {row}.')
            ids.append(parse_image_id(row[id_col], where))
            turns.append(0 if rot_col is None else _quarters(
                row[rot_col], where))
    ids = np.frombuffer(ids, dtype=np.uint64).copy()
    uniq, first = np.unique(ids, return_index=True)
    if len(uniq) != len(ids):
        dup = np.setdiff1d(np.arange(len(ids)), first)[0]
        raise ValueError(f'{_NAME}: "{path}", line {dup + 2}: image '
                         f'{format_image_id(ids[dup])} is listed twice.')
    return ids, np.frombuffer(turns, dtype=np.int8).copy()


def _quarters(text: str, where: str) -> int:
    """Quarter turns of a Rotation cell (empty / nan: 0)."""
    text = text.strip()
    if not text or text.lower() == 'nan':
        return 0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value not in _QUARTERS:
        raise ValueError(f'{_NAME}: {where}: Rotation {text!r} is not one '
                         'of 0, 90, 180, 270 (or empty / nan).')
    return _QUARTERS[value]


class LabelRows:
    """The label rows of one or more CSV files, as flat arrays.

    Attributes:
        ids (np.ndarray): uint64 image ID of every kept row.
        classes (np.ndarray): int16 class index of every kept row.
        values (np.ndarray): int8 value (1 present, 0 absent).
        untrainable (int): Rows of a described class that is not in the
            trainable list (left out).
        below_threshold (int): Machine rows under the threshold (left out).
    """

    def __init__(self) -> None:
        self._ids = array.array('Q')
        self._classes = array.array('h')
        self._values = array.array('b')
        self.untrainable = 0
        self.below_threshold = 0

    def read(self,
             path: str,
             class_of: Dict[str, int],
             threshold: Optional[float] = None) -> None:
        """Append the rows of one image-level label CSV.

        Args:
            path (str): A file with the header columns ``ImageID``,
                ``LabelName`` and ``Confidence`` (``Source`` is not used).
            class_of (dict): MID -> class index, -1 for a described class
                that is not trainable; other MIDs are an error.
            threshold (float, optional): None for a human-verified file
                (Confidence 0 or 1); a number for a machine-generated one:
                rows with a Confidence >= it become present, the others
                are left out (unknown).

        Raises:
            ValueError: An unknown MID, a Confidence outside {0, 1} (human)
                or [0, 1] (machine), or a malformed ID, with file and line.
        """
        reader, f = _open_rows(path)
        ids, classes, values = self._ids, self._classes, self._values
        last_text, last_id = None, 0
        with f:
            columns = _header(reader, path, LABEL_COLUMNS)
            i_col, l_col, c_col = (columns[c] for c in LABEL_COLUMNS)
            width = max(i_col, l_col, c_col)
            for line, row in enumerate(reader, 2):
                if len(row) <= width:
                    raise ValueError(f'{_NAME}: "{path}", line {line}: '
                                     f'expected {len(columns)} columns, got '
                                     f'{row}.')
                text = row[i_col]
                if text != last_text:  # rows come grouped by image
                    last_id = parse_image_id(text, f'"{path}", line {line}')
                    last_text = text
                cls = class_of.get(row[l_col])
                if cls is None:
                    raise ValueError(
                        f'{_NAME}: "{path}", line {line}: unknown class id '
                        f'{row[l_col]!r} (not in the class descriptions). '
                        'Use the class descriptions of the same release.')
                conf = row[c_col]
                if threshold is None:
                    value = _human_value(conf, path, line)
                else:
                    if _machine_confidence(conf, path, line) < threshold:
                        self.below_threshold += 1
                        continue
                    value = 1
                if cls < 0:
                    self.untrainable += 1
                    continue
                ids.append(last_id)
                classes.append(cls)
                values.append(value)

    def take(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, classes, values)`` as numpy arrays; the rows are then
        released (the build holds one copy of them, not two)."""
        out = (np.frombuffer(self._ids, dtype=np.uint64).copy(),
               np.frombuffer(self._classes, dtype=np.int16).copy(),
               np.frombuffer(self._values, dtype=np.int8).copy())
        self._ids = array.array('Q')
        self._classes = array.array('h')
        self._values = array.array('b')
        return out


def _human_value(conf: str, path: str, line: int) -> int:
    """1 / 0 of a human-verified Confidence cell."""
    if conf == '1':
        return 1
    if conf == '0':
        return 0
    try:
        value = float(conf)
    except ValueError:
        value = math.nan
    if value in (0.0, 1.0):
        return int(value)
    raise ValueError(f'{_NAME}: "{path}", line {line}: Confidence {conf!r} of '
                     'a human-verified label must be 1 (present) or 0 '
                     '(verified absent). Machine-generated files go to '
                     'machine_label_files.')


def _machine_confidence(conf: str, path: str, line: int) -> float:
    """The Confidence of a machine-generated row, in [0, 1]."""
    try:
        value = float(conf)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'{_NAME}: "{path}", line {line}: Confidence '
                         f'{conf!r} is not a number in [0, 1].')
    return value
