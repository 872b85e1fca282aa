"""Open Images V6 / V7 image-level labels as a partially labelled dataset.

Reads the published CSVs (docs/openimages.md) into a cached CSR index.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS, TRANSFORMS

from .cache import resolve_cache_dir
from .images import check_missing_policy
from .openimages_files import (format_image_id, read_class_descriptions,
                               read_trainable)
from .openimages_index import ARRAYS, build_index, cached_arrays
from .skipped import SkippedRecords, listing

_NAME = 'OpenImagesMultiLabel'
UNANNOTATED = {'ignore': -1.0, 'negative': 0.0}
# Attributes holding the memory-mapped index arrays.
_MAPPED = ('image_ids', 'turns', 'offsets', 'label_classes', 'label_values')
_LAYOUT = ('Expected layout: <data_root>/<img_dir>/<ImageID>.jpg and the '
           'official CSV files (see docs/openimages.md).')


def _files(data_root: str, paths: Union[None, str, Sequence[str]]
           ) -> List[str]:
    """``paths`` as a list, joined to ``data_root`` unless absolute."""
    if paths is None:
        return []
    if isinstance(paths, str):
        paths = [paths]
    return [osp.join(data_root, osp.expanduser(p)) for p in paths]


@DATASETS.register_module()
class OpenImagesMultiLabel(MultiLabelDataset):
    """Open Images image-level labels (V6 / V7), read from the CSV files.

    Classes are the lines of ``trainable_file`` (or every row of
    ``class_file`` without one), in file order. A human-verified label of
    Confidence 1 is a positive, 0 a verified negative; every other class of
    the image is unknown: ignored (-1) with ``unannotated='ignore'``, a
    negative with ``'negative'`` (the two baselines of Ben-Baruch et al.,
    "Multi-label classification with partial annotations using class-aware
    selective loss", CVPR 2022). Labels of classes described but not
    trainable are left out, counted.

    Rules: repeated rows are merged; a verified 1 and 0 for one image and
    class make that label ignored (counted in ``stats['conflicts']``); an
    unknown class id, a Confidence outside {0, 1}, or a malformed ImageID
    is a ``ValueError`` naming the file and line. Images listed but not on
    disk follow ``missing_images``. Each sample carries ``rotation``, the
    degrees (counterclockwise) of the image-ID file, which the
    ``OpenImagesRotate`` transform applies to the pixels.

    Args:
        data_root (str): Root of the other paths.
        label_files (str | Sequence[str]): Human-verified label CSVs
            (``ImageID,Source,LabelName,Confidence``).
        class_file (str): ``oidv6-class-descriptions.csv`` (or the older
            ``class-descriptions.csv`` without header).
        trainable_file (str, optional): ``oidv6-classes-trainable.txt``.
        image_files (str | Sequence[str], optional): Image-ID CSVs with
            ``ImageID`` and ``Rotation``; they restrict the samples to the
            listed images (in list order) and give the rotation.
        machine_label_files (str | Sequence[str], optional): Machine
            generated label CSVs; rows with Confidence >=
            ``machine_threshold`` become positives unless a human label of
            the same image and class exists.
        machine_threshold (float): See above. Defaults to 0.5.
        img_dirs (str | Sequence[str]): Folders of ``<ImageID>.jpg``,
            searched in order.
        unannotated (str): ``'ignore'`` (default) or ``'negative'``.
        missing_images (str): ``'error'`` (default) or ``'skip'``.
        cache (bool | str): Cache folder (True: under ``data_root``).
        **kwargs: Other arguments of ``MultiLabelDataset`` (``pipeline``,
            ``test_mode``, ``lazy_init``, ...).
    """

    def __init__(self,
                 data_root: str = '',
                 label_files: Union[str, Sequence[str]] = (
                     'oidv6-train-annotations-human-imagelabels.csv', ),
                 class_file: str = 'oidv6-class-descriptions.csv',
                 trainable_file: Optional[str] = 'oidv6-classes-trainable.txt',
                 image_files: Union[None, str, Sequence[str]] = None,
                 machine_label_files: Union[None, str, Sequence[str]] = None,
                 machine_threshold: float = 0.5,
                 img_dirs: Union[str, Sequence[str]] = ('train', ),
                 unannotated: str = 'ignore',
                 missing_images: str = 'error',
                 cache: Union[bool, str] = True,
                 **kwargs) -> None:
        if unannotated not in UNANNOTATED:
            raise ValueError(f'{_NAME}: unannotated must be one of '
                             f'{tuple(UNANNOTATED)}, got {unannotated!r}')
        if not 0.0 <= machine_threshold <= 1.0:
            raise ValueError(f'{_NAME}: machine_threshold must be in [0, 1],'
                             f' got {machine_threshold!r}')
        for key in ('ann_file', 'data_prefix', 'serialize_data', 'indices'):
            if kwargs.get(key):
                raise ValueError(f'{_NAME} does not take `{key}`: name the '
                                 'files with label_files / image_files and '
                                 'the image folders with img_dirs.')
        self.label_files = _files(data_root, label_files)
        if not self.label_files:
            raise ValueError(f'{_NAME}: label_files is empty.')
        self.class_file = _files(data_root, class_file)[0]
        self.trainable_file = (_files(data_root, trainable_file)[0]
                               if trainable_file else None)
        self.image_files = _files(data_root, image_files)
        self.machine_files = _files(data_root, machine_label_files)
        self.machine_threshold = float(machine_threshold)
        self.img_dirs = _files(data_root, img_dirs)
        self.unannotated = unannotated
        self.missing_images = check_missing_policy(_NAME, missing_images)
        self.cache_dir = resolve_cache_dir(cache, data_root,
                                           self.label_files[0])
        self.skipped = SkippedRecords(_NAME)
        self.stats: dict = {}
        super().__init__(
            ann_file='', data_root=data_root, serialize_data=False, **kwargs)

    def full_init(self) -> None:
        """Build (or memory-map) the index and check the images."""
        if self._fully_initialized:
            return
        names = read_class_descriptions(self.class_file)
        mids = (read_trainable(self.trainable_file, names, self.class_file)
                if self.trainable_file else list(names))
        class_of = {mid: -1 for mid in names}
        class_of.update((mid, i) for i, mid in enumerate(mids))
        if len(mids) > np.iinfo(np.int16).max:
            raise ValueError(f'{_NAME}: {len(mids)} classes do not fit the '
                             'int16 class ids of the index; pass the '
                             'trainable_file (9,605 classes in V6).')
        self.mids = tuple(mids)
        self._metainfo['classes'] = tuple(names[m] for m in mids)
        sources = ([self.class_file] + ([self.trainable_file]
                                        if self.trainable_file else []) +
                   self.label_files + self.machine_files + self.image_files)
        options = dict(
            labels=self.label_files,
            machine=self.machine_files,
            threshold=self.machine_threshold if self.machine_files else None,
            images=self.image_files)
        arrays, stats, self.index_dir = cached_arrays(
            sources, options, self.cache_dir, lambda: build_index(
                self.label_files, self.machine_files, self.machine_threshold,
                self.image_files, class_of, mids))
        self.stats = dict(stats)
        print_log(f'{_NAME}: {stats}', logger='current')
        self._set_arrays(arrays)
        self._check_images()
        if len(self.offsets) <= 1:
            raise ValueError(f'{_NAME}: no sample left from '
                             f'{self.label_files} (skipped: '
                             f'{self.skipped.counts() or "none"}).')
        self._fully_initialized = True

    def _set_arrays(self, arrays: dict) -> None:
        """Keep the index arrays (read-only memory maps or arrays)."""
        self.image_ids = arrays['image_ids']
        self.turns = arrays['turns']
        self.offsets = arrays['offsets']
        self.label_classes = arrays['classes']
        self.label_values = arrays['values']
        self.dir_of = np.zeros(len(self.image_ids), np.int8)

    def _check_images(self) -> None:
        """Find every image in ``img_dirs``; apply ``missing_images``."""
        dir_of = np.full(len(self.image_ids), -1, np.int8)
        for k, folder in enumerate(self.img_dirs):
            present = _ids_in_folder(folder)
            todo = dir_of < 0
            dir_of[todo & np.isin(self.image_ids, present)] = k
        missing = np.flatnonzero(dir_of < 0)
        self.dir_of = dir_of
        if not len(missing):
            return
        first = [
            f'{format_image_id(self.image_ids[i])}.jpg' for i in missing[:5]
        ]
        if self.missing_images == 'error':
            raise FileNotFoundError(
                f'{_NAME}: {len(missing)} image file(s) used by '
                f'{len(missing)} of {len(self.image_ids)} samples not found: '
                f'{listing(first)}. Searched the folders {self.img_dirs}. '
                f'{_LAYOUT} To train without them, pass '
                'missing_images="skip" (the samples are then counted and '
                'logged).')
        for i in missing:
            self.skipped.add('skipped, image not found',
                             f'{format_image_id(self.image_ids[i])}.jpg')
        self.skipped.log(len(self.image_ids), 'samples')
        keep = dir_of >= 0
        counts = np.diff(self.offsets)[keep]
        label_keep = np.repeat(keep, np.diff(self.offsets))
        offsets = np.zeros(int(keep.sum()) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        self._set_arrays(
            dict(
                image_ids=np.asarray(self.image_ids)[keep],
                turns=np.asarray(self.turns)[keep],
                offsets=offsets,
                classes=np.asarray(self.label_classes)[label_keep],
                values=np.asarray(self.label_values)[label_keep]))
        self.dir_of = dir_of[keep]

    def __getstate__(self) -> dict:
        """Pickle the memory-mapped index by its folder, not its bytes.

        A ``spawn`` dataloader worker (or any pickling) then maps the same
        cache files instead of receiving a copy of the arrays.
        """
        state = self.__dict__.copy()
        if self.index_dir and all(
                isinstance(state.get(k), np.memmap) for k in _MAPPED):
            for key in _MAPPED:
                state[key] = None
            state['_remap'] = True
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore a pickled dataset, mapping the index files again."""
        remap = state.pop('_remap', False)
        self.__dict__.update(state)
        if remap:
            arrays = {
                name: np.load(osp.join(self.index_dir, f'{name}.npy'),
                              mmap_mode='r')
                for name in ARRAYS
            }
            self.image_ids, self.turns = arrays['image_ids'], arrays['turns']
            self.offsets = arrays['offsets']
            self.label_classes = arrays['classes']
            self.label_values = arrays['values']

    def __len__(self) -> int:
        """Number of samples (full_init first)."""
        if not self._fully_initialized:
            self.full_init()
        return len(self.offsets) - 1

    def get_data_info(self, idx: int) -> dict:
        """The ``idx``-th sample: path, ID, rotation and its targets.

        Args:
            idx (int): Index of the sample.

        Returns:
            dict: ``img_path``, ``img_id``, ``rotation`` (degrees
            counterclockwise), ``gt_label`` (positives), ``gt_score``
            (float32 C-vector: 1 / 0 / -1) and ``sample_idx``.
        """
        if not self._fully_initialized:
            self.full_init()
        idx = int(idx) % len(self) if idx < 0 else int(idx)
        start, end = int(self.offsets[idx]), int(self.offsets[idx + 1])
        cls = np.asarray(self.label_classes[start:end], dtype=np.int64)
        val = np.asarray(self.label_values[start:end], dtype=np.float32)
        score = np.full(len(self.mids), UNANNOTATED[self.unannotated],
                        dtype=np.float32)
        score[cls] = val
        img_id = format_image_id(self.image_ids[idx])
        folder = self.img_dirs[int(self.dir_of[idx])]
        return dict(
            img_path=osp.join(folder, f'{img_id}.jpg'),
            img_id=img_id,
            rotation=90 * int(self.turns[idx]),
            gt_label=cls[val == 1].tolist(),
            gt_score=score,
            sample_idx=idx)

    def get_cat_ids(self, idx: int) -> List[int]:
        """The positive classes of a sample (for class-aware samplers)."""
        start, end = int(self.offsets[idx]), int(self.offsets[idx + 1])
        cls = np.asarray(self.label_classes[start:end])
        return cls[np.asarray(self.label_values[start:end]) == 1].tolist()

    def label_counts(self) -> dict:
        """Per class, the positives, negatives and ignored entries.

        Counted on the index (no sample is expanded), as the loss and the
        metric see the targets.

        Returns:
            dict: ``'positives' / 'negatives' / 'ignored'`` -> int64 array
            of length C.
        """
        num = len(self.mids)
        cls = np.asarray(self.label_classes, dtype=np.int64)
        val = np.asarray(self.label_values)
        pos = np.bincount(cls[val == 1], minlength=num)
        neg = np.bincount(cls[val == 0], minlength=num)
        if self.unannotated == 'negative':
            # Every entry without a verified label is a negative, except
            # the conflicts, which stay ignored.
            ignored = np.bincount(cls[val < 0], minlength=num)
            neg = len(self) - pos - ignored
        else:
            ignored = len(self) - pos - neg
        return dict(positives=pos, negatives=neg, ignored=ignored)

    def index_info(self) -> dict:
        """Where the index lives, its size, and the parsing statistics."""
        arrays = (self.image_ids, self.turns, self.offsets,
                  self.label_classes, self.label_values)
        return dict(
            folder=self.index_dir,
            bytes=int(sum(np.asarray(a).nbytes for a in arrays)),
            stats=dict(self.stats))

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return [
            f'Label files: \t{self.label_files}',
            f'Image folders: \t{self.img_dirs}',
            f'Index: \t{self.index_dir or "in memory"}',
            f'Skipped: \t{self.skipped.counts()}',
        ]


def _ids_in_folder(folder: str) -> np.ndarray:
    """uint64 IDs of the ``<16 hex>.jpg`` files in ``folder`` (sorted)."""
    import array
    ids = array.array('Q')
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return np.zeros(0, np.uint64)
    with entries:
        for entry in entries:
            name = entry.name
            if len(name) == 20 and name.endswith('.jpg'):
                try:
                    ids.append(int(name[:16], 16))
                except ValueError:
                    continue
    return np.sort(np.frombuffer(ids, dtype=np.uint64)) if len(ids) \
        else np.zeros(0, np.uint64)


@TRANSFORMS.register_module()
class OpenImagesRotate(BaseTransform):
    """Rotate the image by ``results['rotation']`` degrees counterclockwise.

    The Open Images image-ID files give, per image, the rotation (0, 90,
    180, 270 degrees counterclockwise) that restores the author's intended
    orientation; :class:`OpenImagesMultiLabel` puts it in ``rotation``.
    Place this transform right after ``LoadImageFromFile``.
    """

    def transform(self, results: dict) -> dict:
        """Rotate ``img`` and update ``img_shape``.

        Args:
            results (dict): With ``img`` and optionally ``rotation``.

        Returns:
            dict: ``results`` with the rotated image.
        """
        degrees = int(results.get('rotation', 0) or 0)
        if degrees % 90:
            raise ValueError(f'OpenImagesRotate: rotation must be a multiple'
                             f' of 90 degrees, got {degrees}')
        turns = (degrees // 90) % 4
        if turns:
            img = np.ascontiguousarray(np.rot90(results['img'], turns))
            results['img'] = img
            results['img_shape'] = img.shape[:2]
        return results
