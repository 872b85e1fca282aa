"""Your own multi-label data from one CSV (or TSV) file, partial labels too.

Format and rules: :class:`MultiLabelCsvDataset` and docs/own_data.md.
"""
import csv
import os.path as osp
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

from mmengine.fileio import join_path
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .images import check_missing_policy, drop_missing_images
from .partial_labels import PartialLabelMixin
from .skipped import SkippedRecords

_NAME = 'MultiLabelCsvDataset'
# The separator of class names inside a cell.
SEPARATOR = '|'
IMAGE, LABELS, NEGATIVES, IGNORED = 'image', 'labels', 'negatives', 'ignored'
_LABEL_COLUMNS = (LABELS, NEGATIVES, IGNORED)
# Keys of a sample that the dataset sets itself: an extra column may not
# take them over (it would silently replace the labels or the path).
RESERVED_KEYS = frozenset({
    'img_path', 'gt_label', 'neg_label', 'ignored_label', 'gt_score',
    'sample_idx', 'csv_line', 'img', 'img_shape', 'ori_shape'
})
_FORMAT = (
    'Expected a header row with the columns "image" (path relative to '
    'data_prefix, or absolute) and "labels" (positive class names separated '
    'by "|", may be empty), optionally "negatives" (known absent; all other '
    'classes are then ignored) or "ignored" (unknown; all other classes are '
    'then negative); comma-separated, or tab-separated for a .tsv file.')


def split_names(cell: Optional[str]) -> List[str]:
    """The class names of one cell, ``'a|b'`` -> ``['a', 'b']``.

    Surrounding spaces are dropped, and so are empty names (an empty cell,
    or a stray ``|`` at an end).

    Args:
        cell (str, optional): The cell's text.

    Returns:
        list[str]: The names in cell order, each once.
    """
    names = (name.strip() for name in (cell or '').split(SEPARATOR))
    return list(dict.fromkeys(name for name in names if name))


def read_class_file(path: str) -> Tuple[str, ...]:
    """The class names of a text file, one per line (blank lines skipped).

    Args:
        path (str): The file.

    Returns:
        tuple[str, ...]: The names, in file order (= class index order).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It has no name.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{_NAME}: class file "{path}" not found. `classes` is a list '
            'of names or a text file with one name per line (relative to '
            'data_root unless absolute).')
    with open(path, encoding='utf-8-sig') as f:
        names = tuple(line.strip() for line in f if line.strip())
    if not names:
        raise ValueError(f'{_NAME}: class file "{path}" has no class name.')
    return names


def check_class_list(names: Sequence, source: str) -> Tuple[str, ...]:
    """Check user-given class names: non-empty distinct strings.

    Args:
        names (Sequence): The names.
        source (str): Where they come from, for the error.

    Returns:
        tuple[str, ...]: The names, stripped.

    Raises:
        ValueError: A name is not a non-empty string, holds ``|``, or
            repeats; or there is no name.
    """
    if isinstance(names, str) or not len(names):
        raise ValueError(f'{_NAME}: {source} must be a non-empty list of '
                         f'class names, got {names!r}')
    out = []
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f'{_NAME}: {source}: class #{i} is {name!r}; '
                             'class names are non-empty strings.')
        if SEPARATOR in name:
            raise ValueError(
                f'{_NAME}: {source}: class #{i} {name!r} contains '
                f'"{SEPARATOR}", which separates names in the CSV cells.')
        out.append(name.strip())
    seen: Dict[str, int] = {}
    for i, name in enumerate(out):
        if name in seen:
            raise ValueError(f'{_NAME}: {source}: class "{name}" is listed '
                             f'twice (#{seen[name]} and #{i}).')
        seen[name] = i
    return tuple(out)


@DATASETS.register_module()
class MultiLabelCsvDataset(PartialLabelMixin, MultiLabelDataset):
    """A multi-label dataset read from a CSV (or TSV) file with a header.

    Columns (names as in the header, any order):

    * ``image`` (required): the image path, relative to ``data_prefix``
      unless absolute;
    * ``labels`` (required): the positive class names, separated by ``|``
      (may be empty: no positive);
    * ``negatives`` (optional): class names known to be absent. When this
      column exists, every class in neither ``labels`` nor ``negatives`` is
      **ignored** (-1) for that image;
    * ``ignored`` (optional): class names whose presence is unknown. When
      this column exists and ``negatives`` does not, those classes are
      ignored and all others are negative. (With both columns, the rule of
      ``negatives`` applies; ``ignored`` then only documents.)
    * with neither column, every class not in ``labels`` is negative (a
      fully labelled dataset; samples carry only ``gt_label``);
    * any other column is kept in the sample under its header name (e.g.
      ``dataset.get_data_info(0)['photographer']``; add it to
      ``PackInputs``' ``meta_keys`` to see it in the data samples).

    The file is comma-separated, or tab-separated when its name ends in
    ``.tsv``; standard CSV quoting applies and a UTF-8 byte-order mark (as
    Excel writes) is accepted. Rows whose cells are all empty are skipped.

    Classes: the ``classes`` argument (a list, or a text file with one name
    per line; class index = position), else the sorted union of every name
    in the label columns of ``classes_from`` (the training CSV, so that the
    validation and test splits index the classes as training does), else
    of the file itself. A name of this file that a ``classes_from`` list
    lacks is an error naming the class and both files: the model never
    learnt it. Each sample::

        dict(img_path, gt_label=[positives], csv_line, <other columns>)

    plus ``neg_label`` (with a ``negatives`` column) or ``ignored_label``
    (with an ``ignored`` column), and then, when fetched, ``gt_score`` (1 /
    0 / -1) for every sample, which the loss and ``MultiLabelMAP`` /
    ``MultiLabelF1`` read.

    Bad data (a missing or repeated column, a repeated image, a class not
    in ``classes`` ...; the full list is in docs/datasets.md) raises an
    error naming the file and the line. Missing images follow
    ``missing_images``: ``'error'`` (default; the count and the first lines)
    or ``'skip'`` (counted and logged, see ``dataset.skipped``).

    Args:
        ann_file (str): The CSV / TSV file, relative to ``data_root`` unless
            absolute.
        classes (str | Sequence[str], optional): The class names, or a text
            file of them (relative to ``data_root`` unless absolute).
            Defaults to the sorted names found in ``classes_from``, else in
            the file.
        classes_from (str, optional): Another CSV / TSV file (relative to
            ``data_root`` unless absolute) whose sorted class names are the
            class list when ``classes`` is None; give a validation or test
            split the training CSV here. Defaults to None.
        data_root (str): Root of ``ann_file``, ``data_prefix`` and a class
            file. Defaults to ''.
        data_prefix (str | dict): The folder image paths are relative to
            (``''``: ``data_root``). Defaults to ''.
        missing_images (str): ``'error'`` (default) or ``'skip'``.
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.MultiLabelDataset` (``pipeline``,
            ``test_mode``, ``metainfo`` ...).

    Examples:
        >>> train = MultiLabelCsvDataset(
        ...     'train.csv', classes='classes.txt', data_root='data/mine',
        ...     data_prefix='images')
        >>> train.get_data_info(0)['gt_score']
        array([ 1., -1.,  0.], dtype=float32)
    """

    def __init__(self,
                 ann_file: str,
                 classes: Union[None, str, Sequence[str]] = None,
                 classes_from: Optional[str] = None,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = '',
                 missing_images: str = 'error',
                 **kwargs) -> None:
        self.missing_images = check_missing_policy(_NAME, missing_images)
        self.skipped = SkippedRecords(_NAME)
        if not isinstance(ann_file, str) or not ann_file:
            raise ValueError(f'{_NAME}: ann_file must be the path of a CSV '
                             f'or TSV file, got {ann_file!r}')
        # mmpretrain would read a class file relative to the working
        # directory and let metainfo['classes'] win silently; here the
        # file is relative to data_root and the names are checked.
        if isinstance(classes, str):
            path = osp.expanduser(classes)
            if data_root and not osp.isabs(path):
                path = osp.join(data_root, path)
            self.class_source = f'class file "{path}"'
            self._given_classes = check_class_list(
                read_class_file(path), self.class_source)
        elif classes is not None:
            self.class_source = '`classes`'
            self._given_classes = check_class_list(classes, '`classes`')
        else:
            self.class_source = None
            self._given_classes = None
        self.classes_from = None
        if classes is None and classes_from is not None:
            if not isinstance(classes_from, str) or not classes_from:
                raise ValueError(f'{_NAME}: classes_from must be the path of '
                                 f'a CSV or TSV file, got {classes_from!r}')
            path = osp.expanduser(classes_from)
            if data_root and not osp.isabs(path):
                path = osp.join(data_root, path)
            self.classes_from = path
        # Lines naming no class at all: all-negative (all-unknown with a
        # "negatives" column) is rarely meant, so the log and dataset_stats
        # count them.
        self.unlabelled_lines: List[int] = []
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def _read_rows(self, path: Optional[str] = None
                   ) -> Tuple[List[str], List[Tuple[int, dict]]]:
        """The header and the non-blank rows of a file, with line numbers.

        Args:
            path (str, optional): The file; defaults to ``ann_file``.

        Returns:
            tuple: the column names, and ``(line, {column: cell})`` per row.
        """
        path = path or self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(f'{_NAME}: annotation file "{path}" not '
                                    f'found. {_FORMAT}')
        delimiter = '\t' if path.lower().endswith('.tsv') else ','
        rows = []
        try:
            with open(path, encoding='utf-8-sig', newline='') as f:
                reader = csv.reader(f, delimiter=delimiter)
                header = next(reader, None)
                if header is None or not any(c.strip() for c in header):
                    raise ValueError(f'{_NAME}: "{path}" is empty. {_FORMAT}')
                header = [c.strip() for c in header]
                self._check_header(header, reader.line_num, path)
                last = reader.line_num
                for cells in reader:
                    # A quoted cell may span lines: a row starts after the
                    # previous one ended.
                    line, last = last + 1, reader.line_num
                    if not any(c.strip() for c in cells):
                        continue
                    if len(cells) > len(header):
                        raise ValueError(
                            f'{_NAME}: "{path}", line {line} has '
                            f'{len(cells)} cells but the header has '
                            f'{len(header)} ({header}). Quote cells that '
                            f'contain "{delimiter}".')
                    cells += [''] * (len(header) - len(cells))
                    rows.append((line, dict(zip(header, cells))))
        except (UnicodeDecodeError, csv.Error) as err:
            raise ValueError(f'{_NAME}: "{path}" is not a readable UTF-8 '
                             f'CSV file ({err}).') from err
        if not rows:
            raise ValueError(f'{_NAME}: "{path}" has a header but no sample '
                             'row.')
        return header, rows

    def _check_header(self, header: List[str], line: int,
                      path: str) -> None:
        """Raise unless the header has the required, distinct columns."""
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise ValueError(f'{_NAME}: "{path}", line {line}: the header '
                             f'repeats the column(s) {repeated}.')
        absent = [c for c in (IMAGE, LABELS) if c not in header]
        if absent:
            raise ValueError(
                f'{_NAME}: "{path}", line {line}: no column(s) {absent} in '
                f'the header {header}. {_FORMAT}')
        reserved = sorted(set(header) & RESERVED_KEYS)
        if reserved:
            raise ValueError(
                f'{_NAME}: "{path}", line {line}: the column(s) {reserved} '
                'would replace what the dataset sets in each sample; rename '
                'them.')

    def _row_names(self, line: int, row: dict, columns: Sequence[str],
                   path: str) -> Dict[str, List[str]]:
        """The class names of each label column of one row, checked."""
        names = {c: split_names(row[c]) for c in columns}
        first: Dict[str, str] = {}
        for column, column_names in names.items():
            for name in column_names:
                if name in first:
                    raise ValueError(
                        f'{_NAME}: "{path}", line {line}: class '
                        f'"{name}" is in both "{first[name]}" and '
                        f'"{column}"; a class is positive, negative or '
                        'ignored, not two of them.')
                first[name] = column
        return names

    def load_data_list(self) -> List[dict]:
        """Read the file into samples (see the class docstring).

        Returns:
            list[dict]: One sample per row, in file order.
        """
        path = self.ann_file
        header, rows = self._read_rows()
        columns = [c for c in _LABEL_COLUMNS if c in header]
        extras = [c for c in header if c not in (IMAGE, ) + _LABEL_COLUMNS]
        parsed = [(line, row, self._row_names(line, row, columns, path))
                  for line, row in rows]

        classes = self._given_classes
        if classes is None:
            classes = self._metainfo.get('classes')
            if classes is not None:
                self.class_source = "metainfo['classes']"
                classes = check_class_list(classes, self.class_source)
        if classes is None and self.classes_from is not None:
            classes = self._classes_of(self.classes_from)
            self.class_source = f'classes_from "{self.classes_from}"'
        if classes is None:
            classes = self._classes_of(path, parsed)
        self._metainfo['classes'] = classes
        index = {name: i for i, name in enumerate(classes)}

        data_list = []
        first_line: Dict[str, int] = {}
        for line, row, names in parsed:
            image = osp.expanduser(row[IMAGE].strip())
            if not image:
                raise ValueError(f'{_NAME}: "{path}", line {line}: the '
                                 '"image" cell is empty.')
            img_path = image if osp.isabs(image) else join_path(
                self.img_prefix, image)
            if img_path in first_line:
                raise ValueError(
                    f'{_NAME}: "{path}", line {line}: image "{image}" is '
                    f'already listed on line {first_line[img_path]}; merge '
                    'the two rows into one.')
            first_line[img_path] = line
            labels = {}
            if not any(names.values()):
                self.unlabelled_lines.append(line)
            for column, column_names in names.items():
                unknown = [n for n in column_names if n not in index]
                if unknown and self.classes_from is not None:
                    raise ValueError(
                        f'{_NAME}: "{path}", line {line}: class(es) '
                        f'{unknown} of "{column}" never occur in the '
                        f'training file "{self.classes_from}", whose '
                        f'{len(classes)} classes this split uses (the model '
                        'is trained on those only). Add training images '
                        'of the class, or give every split the same '
                        'explicit `classes` list (a class file).')
                if unknown:
                    raise ValueError(
                        f'{_NAME}: "{path}", line {line}: "{column}" has '
                        f'{unknown}, not among the {len(classes)} classes of '
                        f'{self.class_source} (e.g. {list(classes[:5])}). '
                        'Fix the name or add the class.')
                labels[column] = sorted(index[n] for n in column_names)
            info = dict(img_path=img_path, gt_label=labels[LABELS])
            if NEGATIVES in labels:
                info['neg_label'] = labels[NEGATIVES]
            elif IGNORED in labels:
                info['ignored_label'] = labels[IGNORED]
            info['csv_line'] = line
            info.update((c, row[c]) for c in extras)
            data_list.append(info)

        total = len(data_list)
        data_list = drop_missing_images(
            _NAME, data_list, self.missing_images,
            lambda info: f'{osp.basename(path)} line {info["csv_line"]} '
            f'({info["img_path"]})',
            f'Image paths are relative to data_prefix (here '
            f'"{self.img_prefix}") unless absolute.', self.skipped)
        return self.skipped.finish(data_list, total, f'"{path}"', 'images')

    def _classes_of(self, path: str,
                    parsed: Optional[list] = None) -> Tuple[str, ...]:
        """The sorted class names found in a CSV file's label columns.

        Args:
            path (str): The file.
            parsed (list, optional): Its rows, already read and checked.

        Returns:
            tuple[str, ...]: The names, sorted.
        """
        if parsed is None:
            header, rows = self._read_rows(path)
            columns = [c for c in _LABEL_COLUMNS if c in header]
            parsed = [(line, row, self._row_names(line, row, columns, path))
                      for line, row in rows]
        found: Set[str] = set()
        for _, _, names in parsed:
            for column_names in names.values():
                found.update(column_names)
        if not found:
            raise ValueError(
                f'{_NAME}: "{path}" names no class in its label columns, '
                'so the class list is empty; pass `classes`.')
        return tuple(sorted(found))

    def summary(self) -> str:
        """One line for the training log: rows, classes and their source.

        Returns:
            str: e.g. ``"train.csv": 800 images, 10 classes (the file's
            sorted names), 2 rows without any label``.
        """
        line = (f'"{self.ann_file}": {len(self)} images, '
                f'{len(self.metainfo["classes"])} classes from '
                f'{self.class_source or "the file (sorted names)"}')
        if self.unlabelled_lines:
            line += (f', {len(self.unlabelled_lines)} row(s) naming no '
                     f'class (e.g. line {self.unlabelled_lines[0]})')
        counts = self.skipped.counts()
        if counts:
            line += f', skipped: {counts}'
        return line

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return [
            f'Annotation file: \t{self.ann_file}',
            f'Prefix of images: \t{self.img_prefix}',
            f'Classes from: \t{self.class_source or "the file"}',
            f'Skipped: \t{self.skipped.counts()}',
        ]
