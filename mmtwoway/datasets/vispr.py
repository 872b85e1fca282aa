"""VISPR (Visual Privacy, Orekondy et al., ICCV 2017)."""
import csv
import os.path as osp
from typing import List, Sequence, Union

from mmengine.fileio import join_path
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .annotations import (check_classes, check_files_exist, join_files,
                          load_json, record_id)
from .cache import cached_index, resolve_cache_dir, track
from .images import check_missing_policy, drop_missing_images
from .skipped import SkippedRecords, listing

_LAYOUT = (
    'Expected the VISPR2017 layout: <data_root>/train2017.txt, val2017.txt '
    'and test2017.txt, whose lines name the per-image JSON files relative to '
    '<data_root> (e.g. annotations/train2017/2017_10001018.json), whose '
    '"image_path" names the image relative to <data_root> (e.g. '
    'images/train2017/2017_10001018.jpg), and attributes.tsv (columns idx, '
    'attribute_id, group, description) from github.com/tribhuvanesh/vpa; '
    'set `ann_file` and `attributes_file` relative to `data_root`.')

# Columns of attributes.tsv that are read.
_TSV_COLUMNS = ('idx', 'attribute_id')


@DATASETS.register_module()
class VISPR(MultiLabelDataset):
    """VISPR2017 images as a multi-label dataset.

    68 privacy attributes per image, read from the VISPR2017 files as published
    (github.com/tribhuvanesh/vpa): split lists that name one JSON annotation
    file per image, and ``attributes.tsv`` for the classes. Every image is
    fully labelled (``a0_safe`` is the label of safe images), so samples carry
    only ``gt_label``.

    Classes: the ``attribute_id`` column of ``attributes.tsv``, class index
    = its ``idx`` column (0..67), not the number inside the id (ids are
    non-contiguous and out of numeric order: idx 48 is
    ``a99_legal_involvement``). Rows with an empty ``idx`` are left out, as
    the dataset authors' own loader does. ``metainfo['descriptions']`` holds
    the ``description`` column. Each sample::

        dict(img_path, gt_label=[class indices], img_id, ann_path)

    Paper setting (Table 6): train = train2017 + val2017 (10,000 + 4,167 =
    14,167 images), test = test2017 (8,000).

    Bad data: a missing split list, annotation file or ``attributes.tsv``
    and a malformed one (not JSON, no ``image_path`` string or ``labels``
    list, a label not in ``attributes.tsv``, idx values that are not
    0..N-1) raise an error naming the file. Missing images follow
    ``missing_images``.

    The per-image JSON files are parsed once and cached (see ``cache``):
    the first run shows a progress bar, later runs read
    ``.mmtwoway_cache/`` and say so; editing, adding or replacing any of the
    files rebuilds the cache.

    Args:
        data_root (str): The VISPR2017 root. Defaults to ''.
        ann_file (str | Sequence[str]): Split list(s), concatenated in
            order. Defaults to ``('train2017.txt', 'val2017.txt')``.
        attributes_file (str): ``attributes.tsv``. Defaults to
            ``'attributes.tsv'``.
        data_prefix (str | dict): Folder that ``image_path`` is relative
            to. Defaults to ``data_root``.
        missing_images (str): ``'error'`` (default) or ``'skip'`` (counted
            and logged).
        cache (bool | str): Cache folder (True: under ``data_root``).
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.MultiLabelDataset`.

    Examples:
        >>> test = VISPR(data_root='data/vispr', ann_file='test2017.txt',
        ...              test_mode=True)
        >>> len(test), test.CLASSES[0]
        (8000, 'a0_safe')
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: Union[str, Sequence[str]] = ('train2017.txt',
                                                        'val2017.txt'),
                 attributes_file: str = 'attributes.tsv',
                 data_prefix: Union[str, dict] = '',
                 missing_images: str = 'error',
                 cache: Union[bool, str] = True,
                 **kwargs) -> None:
        self.missing_images = check_missing_policy('VISPR', missing_images)
        self.ann_files = join_files(data_root, ann_file, 'VISPR')
        self.attributes_file = join_files(data_root, attributes_file,
                                          'VISPR')[0]
        self.cache_dir = resolve_cache_dir(cache, data_root, self.ann_files[0])
        self.skipped = SkippedRecords('VISPR')
        super().__init__(
            ann_file='',
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def _attributes(self):
        """``(attribute ids, descriptions)`` of ``attributes.tsv``, by idx."""
        path = self.attributes_file
        check_files_exist([path], 'VISPR', _LAYOUT)
        with open(path, encoding='utf-8', newline='') as f:
            reader = csv.DictReader(f, delimiter='\t')
            absent = [
                c for c in _TSV_COLUMNS if c not in (reader.fieldnames or [])
            ]
            if absent:
                raise ValueError(
                    f'VISPR: "{path}" has no column(s) {absent} in its '
                    f'header {reader.fieldnames}; expected the tab-separated '
                    'header "idx attribute_id group description".')
            rows = {}
            for line, row in enumerate(reader, start=2):
                idx = (row['idx'] or '').strip()
                if not idx:
                    continue
                if not idx.isdigit() or int(idx) in rows:
                    raise ValueError(f'VISPR: "{path}", line {line}: idx '
                                     f'{idx!r} is not a new integer.')
                rows[int(idx)] = row
        if sorted(rows) != list(range(len(rows))) or not rows:
            raise ValueError(
                f'VISPR: the idx values of "{path}" must be 0..N-1, got '
                f'{sorted(rows)[:5]}...{sorted(rows)[-3:]}.')
        ids = [rows[i]['attribute_id'].strip() for i in range(len(rows))]
        if len(set(ids)) != len(ids) or not all(ids):
            raise ValueError(f'VISPR: "{path}" has an empty or repeated '
                             'attribute_id.')
        descriptions = [(rows[i].get('description') or '').strip()
                        for i in range(len(rows))]
        return ids, descriptions

    def _annotation_files(self) -> List[str]:
        """The per-image JSON files named by the split lists, in order."""
        files = []
        for split_list in self.ann_files:
            check_files_exist([split_list], 'VISPR', _LAYOUT)
            with open(split_list, encoding='utf-8') as f:
                names = [line.strip() for line in f if line.strip()]
            paths = join_files(self.data_root, names, 'VISPR') if names \
                else []
            missing = [p for p in paths if not osp.isfile(p)]
            if missing:
                raise FileNotFoundError(
                    f'VISPR: {len(missing)} of the {len(paths)} annotation '
                    f'files listed in "{split_list}" not found: '
                    f'{listing(missing)}. {_LAYOUT}')
            files.extend(paths)
        return files

    def _parse(self, files: List[str]) -> list:
        """Read every per-image JSON file (what is cached).

        Returns:
            list: ``[id, image_path, labels]`` per file, in order.
        """
        return [_parse_annotation(path) for path in track(files, len(files))]

    def load_data_list(self) -> List[dict]:
        """Read the split lists, the annotations and the classes.

        Returns:
            list[dict]: One sample per listed image, in list order.
        """
        ids, descriptions = self._attributes()
        check_classes('VISPR', self._metainfo.get('classes'), ids,
                      self.attributes_file)
        self._metainfo['classes'] = tuple(ids)
        self._metainfo['descriptions'] = tuple(descriptions)
        class_of = {attr: i for i, attr in enumerate(ids)}

        files = self._annotation_files()
        records = cached_index('VISPR', 'vispr-annotations',
                               self.ann_files + files, self.cache_dir,
                               lambda: self._parse(files))
        data_list = []
        for path, (img_id, image_path, labels) in zip(files, records):
            unknown = sorted(set(labels) - set(class_of))
            if unknown:
                raise ValueError(
                    f'VISPR: "{path}" has the label(s) {unknown}, which are '
                    f'not attribute_ids of "{self.attributes_file}". Use the '
                    'attributes.tsv of the VISPR2017 release.')
            data_list.append(
                dict(
                    img_path=join_path(self.img_prefix, image_path),
                    gt_label=sorted({class_of[a]
                                     for a in labels}),
                    img_id=img_id,
                    ann_path=path))
        total = len(data_list)
        data_list = drop_missing_images(
            'VISPR', data_list, self.missing_images,
            lambda info: f'{info["ann_path"]} (image {info["img_path"]})',
            f'data_prefix={self.img_prefix!r}. {_LAYOUT}', self.skipped)
        return self.skipped.finish(data_list, total, str(self.ann_files),
                                   'images')

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return [
            f'Split lists: \t{self.ann_files}',
            f'Attributes: \t{self.attributes_file}',
            f'Prefix of images: \t{self.img_prefix}',
        ]


def _parse_annotation(path: str) -> list:
    """``[id, image_path, labels]`` of one per-image JSON file."""
    data = load_json(path, 'VISPR', _LAYOUT)
    if not isinstance(data, dict):
        raise ValueError(f'VISPR: "{path}" must be a JSON object.')
    image_path, labels = data.get('image_path'), data.get('labels')
    if not isinstance(image_path, str) or not image_path:
        raise ValueError(f'VISPR: "{path}" has no "image_path" string.')
    if not isinstance(labels, list) or not all(
            isinstance(a, str) for a in labels):
        raise ValueError(f'VISPR: "{path}" has no "labels" list of '
                         f'attribute ids (got {labels!r}).')
    img_id = data.get('id')
    img_id = record_id(img_id, 'id', lambda: f'VISPR: "{path}"') \
        if img_id is not None else osp.splitext(osp.basename(path))[0]
    return [img_id, image_path, labels]
