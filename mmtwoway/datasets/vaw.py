"""VAW (Visual Attributes in the Wild, Pham et al., CVPR 2021)."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmengine.logging import print_log
from mmpretrain.registry import DATASETS

from .annotations import (check_classes, join_files, load_json, parse_box,
                          record_id)
from .cache import cached_index, track
from .instance import InstanceDataset
from .transforms.crop_instance import xywh_to_xyxy

_LAYOUT = (
    'Expected the VAW layout: <data_root>/data/ holding train_part1.json, '
    'train_part2.json, val.json, test.json and attribute_index.json (the '
    '"data" folder of github.com/adobe-research/vaw_dataset), and the '
    'Visual Genome 1.4 images in <data_root>/VG_100K/ and '
    '<data_root>/VG_100K_2/; set `ann_file`, `attribute_file` and '
    '`img_dirs` relative to `data_root`.')

_KEYS = ('image_id', 'instance_id', 'instance_bbox', 'positive_attributes',
         'negative_attributes')

# Position of the fields in a cached record.
_IMAGE, _INSTANCE, _BOX, _POS, _NEG = 0, 1, slice(2, 6), 6, 7


@DATASETS.register_module()
class VAW(InstanceDataset):
    """VAW instances as a partially labelled multi-label dataset.

    620 attributes of object instances in Visual Genome images, read from the
    files of github.com/adobe-research/vaw_dataset as they are published. Each
    instance is one sample: the crop of its box, labelled 1 for its
    ``positive_attributes``, 0 for its ``negative_attributes`` and ignored (-1)
    for every other attribute, which is what VAW's official evaluator does too.

    Classes are the 620 names of ``attribute_index.json``, class index = the
    file's index (``"light colored": 75``). Each sample::

        dict(img_path, instance_bbox=[x1, y1, x2, y2], gt_label=[positives],
             neg_label=[negatives], img_id, instance_id, ann_file)

    and, when fetched, ``gt_score`` (1 / 0 / -1, see
    :mod:`mmtwoway.datasets.partial_labels`). Put
    :class:`~mmtwoway.datasets.transforms.CropInstance` right after
    ``LoadImageFromFile`` to train on the instance crop.

    ``image_id`` and ``instance_id`` may be ints (as in VAW's README) or
    strings (as loaders write them); both are kept as strings. An image
    ``<image_id>.jpg`` is looked up in each of ``img_dirs`` in turn (Visual
    Genome splits its images over ``VG_100K`` and ``VG_100K_2`` with no rule
    telling which; a merged folder works too).

    Paper setting (Table 6): train = train_part1 + train_part2 + val
    (216,790 + 12,286 = 229,076 instances), test = test (31,819).

    Bad data:

    * an unreadable or malformed file, an instance without one of the keys
      ``image_id, instance_id, instance_bbox, positive_attributes,
      negative_attributes``, a box that is not four numbers, or an attribute
      name not in ``attribute_index.json``: ``ValueError`` naming the file,
      the instance's position and ``instance_id``;
    * an attribute listed as both positive and negative of an instance: that
      label becomes ignored (the sample is kept), counted and logged;
    * a missing image: see ``missing_images``; a box with less than
      ``min_box_size`` px inside its image: skipped, counted and logged (see
      :class:`~mmtwoway.datasets.instance.InstanceDataset`).

    The parsed instance files are cached (see ``cache``): the first run
    shows a progress bar, later runs read ``.mmtwoway_cache/`` and say so.

    Args:
        data_root (str): Root that the other paths are relative to.
            Defaults to ''.
        ann_file (str | Sequence[str]): Instance file(s), concatenated in
            order. Defaults to the paper's training files
            ``data/train_part1.json``, ``data/train_part2.json``,
            ``data/val.json``.
        attribute_file (str): ``attribute_index.json``. Defaults to
            ``'data/attribute_index.json'``.
        img_dirs (Sequence[str]): Image folders searched in order. Defaults
            to ``('VG_100K', 'VG_100K_2')``.
        missing_images (str): ``'error'`` (default) or ``'skip'``.
        min_box_size (float): See the box rule. Defaults to 1 px.
        cache (bool | str): Cache folder (True: under ``data_root``).
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.MultiLabelDataset` (``pipeline``,
            ``test_mode``, ``metainfo`` ...).

    Examples:
        >>> test = VAW(data_root='data/vaw', ann_file='data/test.json',
        ...            test_mode=True)
        >>> len(test), len(test.CLASSES)
        (31819, 620)
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: Union[str,
                                 Sequence[str]] = ('data/train_part1.json',
                                                   'data/train_part2.json',
                                                   'data/val.json'),
                 attribute_file: str = 'data/attribute_index.json',
                 img_dirs: Sequence[str] = ('VG_100K', 'VG_100K_2'),
                 missing_images: str = 'error',
                 min_box_size: float = 1.0,
                 cache: Union[bool, str] = True,
                 **kwargs) -> None:
        self.attribute_file = join_files(data_root, attribute_file, 'VAW')[0]
        self.img_dirs = join_files(data_root, img_dirs, 'VAW')
        super().__init__(
            ann_file=ann_file,
            missing_images=missing_images,
            min_box_size=min_box_size,
            cache=cache,
            data_root=data_root,
            **kwargs)

    def _attribute_names(self) -> List[str]:
        """The class names of ``attribute_index.json``, by index."""
        index = load_json(self.attribute_file, 'VAW', _LAYOUT)
        path = self.attribute_file
        if not isinstance(index, dict) or not index:
            raise ValueError(f'VAW: "{path}" must be a non-empty object '
                             '{attribute name: index}.')
        names: List[Optional[str]] = [None] * len(index)
        for name, idx in index.items():
            if (not isinstance(idx, int) or isinstance(idx, bool)
                    or not 0 <= idx < len(index) or names[idx] is not None):
                raise ValueError(
                    f'VAW: "{path}" maps "{name}" to {idx!r}; the indices '
                    f'must be 0..{len(index) - 1}, each used once.')
            names[idx] = name
        return names

    def _parse(self) -> dict:
        """Read the instance files into compact records (what is cached).

        Returns:
            dict: ``names``: every attribute name met, in order; ``files``:
            per file, records ``[image_id, instance_id, x, y, w, h,
            [positive name positions], [negative name positions]]``.
        """
        table: Dict[str, int] = {}
        files = []
        for path in self.ann_files:
            print_log(f'VAW: parsing "{path}"', logger='current')
            instances = load_json(path, 'VAW', _LAYOUT)
            if not isinstance(instances, list):
                raise ValueError(f'VAW: "{path}" must be a JSON list of '
                                 'instances.')
            files.append([
                _parse_instance(path, i, inst, table)
                for i, inst in track(enumerate(instances), len(instances))
            ])
        return dict(names=list(table), files=files)

    def load_data_list(self) -> List[dict]:
        """Parse (or read from the cache) and check every instance.

        Returns:
            list[dict]: One sample per kept instance, in file order.
        """
        names = self._attribute_names()
        check_classes('VAW', self._metainfo.get('classes'), names,
                      self.attribute_file)
        self._metainfo['classes'] = tuple(names)
        index = cached_index('VAW', 'vaw-instances', self.ann_files,
                             self.cache_dir, self._parse)
        class_of = {name: i for i, name in enumerate(names)}
        # Position in the cached name table -> class index (None: unknown).
        to_class = [class_of.get(name) for name in index['names']]
        locate = self._image_locator()

        data_list = []
        for path, records in zip(self.ann_files, index['files']):
            for i, rec in enumerate(records):
                pos = {to_class[p] for p in rec[_POS]}
                neg = {to_class[p] for p in rec[_NEG]}
                if None in pos or None in neg:
                    _raise_unknown(rec, to_class, index['names'], path, i,
                                   self.attribute_file)
                both = pos & neg
                if both:
                    labels = sorted(names[c] for c in both)
                    self.skipped.add(
                        'kept, attribute made ignored: listed as both '
                        'positive and negative',
                        f'{osp.basename(path)}: instance_id {rec[_INSTANCE]}'
                        f' ({labels})')
                data_list.append(
                    dict(
                        img_path=locate(rec[_IMAGE]),
                        instance_bbox=xywh_to_xyxy(rec[_BOX]),
                        gt_label=sorted(pos - both),
                        neg_label=sorted(neg - both),
                        img_id=rec[_IMAGE],
                        instance_id=rec[_INSTANCE],
                        ann_file=path))
        return self.finish(data_list, _describe,
                           f'Searched the folders {self.img_dirs}. {_LAYOUT}')

    def _image_locator(self):
        """A function ``image_id -> path``: the first of ``img_dirs`` that
        has ``<image_id>.jpg`` (the first folder if none has it)."""
        found: Dict[str, str] = {}

        def locate(image_id: str) -> str:
            if image_id not in found:
                name = f'{image_id}.jpg'
                paths = [osp.join(d, name) for d in self.img_dirs]
                found[image_id] = next((p for p in paths if osp.isfile(p)),
                                       paths[0])
            return found[image_id]

        return locate

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return [
            f'Annotation files: \t{self.ann_files}',
            f'Attribute index: \t{self.attribute_file}',
            f'Image folders: \t{self.img_dirs}',
            f'Skipped: \t{self.skipped.counts()}',
        ]


def _describe(info: dict) -> str:
    """File and record of a VAW sample."""
    return (f'{osp.basename(info["ann_file"])}: instance_id '
            f'{info["instance_id"]} (image {info["img_path"]})')


def _parse_instance(path: str, i: int, inst, table: Dict[str, int]) -> list:
    """Check one instance of an instance file; return its cached record.

    Args:
        path (str): The file.
        i (int): The instance's position in the file.
        inst (dict): The instance as read.
        table (dict): Attribute name -> position, extended with new names.

    Returns:
        list: ``[image_id, instance_id, x, y, w, h, [pos], [neg]]``.
    """

    def where() -> str:
        inst_id = inst.get('instance_id') if isinstance(inst, dict) else None
        return f'VAW: "{path}", instance #{i} (instance_id {inst_id!r})'

    if not isinstance(inst, dict):
        raise ValueError(f'{where()} is not an object.')
    absent = [key for key in _KEYS if key not in inst]
    if absent:
        raise ValueError(f'{where()} has no {absent}; every VAW instance '
                         f'has {list(_KEYS)}.')
    record = [
        record_id(inst['image_id'], 'image_id', where),
        record_id(inst['instance_id'], 'instance_id', where),
        *parse_box(inst['instance_bbox'], where)
    ]
    for key in ('positive_attributes', 'negative_attributes'):
        names = inst[key] if inst[key] is not None else []
        if not isinstance(names, list) or not all(
                isinstance(n, str) for n in names):
            raise ValueError(f'{where()}: "{key}" must be a list of '
                             f'attribute names, got {names!r}.')
        record.append([table.setdefault(n, len(table)) for n in names])
    return record


def _raise_unknown(rec: list, to_class: List[Optional[int]], table: List[str],
                   path: str, i: int, attribute_file: str) -> None:
    """Raise for the first attribute name of ``rec`` not in the index."""
    name = next(table[p] for p in rec[_POS] + rec[_NEG] if to_class[p] is None)
    raise ValueError(
        f'VAW: "{path}", instance #{i} (instance_id {rec[_INSTANCE]}) has '
        f'the attribute "{name}", which is not in "{attribute_file}". Use '
        'the attribute_index.json that came with these instance files.')
