"""The Open Images label index: CSR arrays built once, cached as ``.npy``.

Arrays, cache and memory: docs/openimages.md ("The index and its cache").
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from .cache import CACHE_VERSION, digest, file_signature
from .openimages_files import LabelRows, format_image_id, read_image_list

ARRAYS = ('image_ids', 'turns', 'offsets', 'classes', 'values')
# How many examples of each counted case the stats keep.
_EXAMPLES = 5


def build_index(label_files: Sequence[str], machine_files: Sequence[str],
                machine_threshold: float, image_files: Sequence[str],
                class_of: Dict[str, int], mids: List[str]
                ) -> Tuple[Dict[str, np.ndarray], dict]:
    """Parse the files into the CSR arrays and their statistics.

    Rules: duplicate rows of one image and class are merged; a verified 1
    and a verified 0 for one image and class make that label ignored (-1),
    counted in ``stats['conflicts']``; a human-verified label overrides a
    machine-generated one. With ``image_files`` the samples are the listed
    images that have a label, in list order (labels of unlisted images are
    counted and left out); without, every labelled image, by ID.

    Args:
        label_files (Sequence[str]): Human-verified label CSVs.
        machine_files (Sequence[str]): Machine-generated label CSVs.
        machine_threshold (float): Minimum Confidence of a machine label.
        image_files (Sequence[str]): Image-ID files (with ``Rotation``).
        class_of (dict): MID -> class index (-1: not trainable).
        mids (list[str]): The trainable MIDs by class index.

    Returns:
        tuple: ``(arrays, stats)``: the arrays named in :data:`ARRAYS` and
        a JSON-serialisable dict of counts and examples.
    """
    num_classes = len(mids)
    human, machine = LabelRows(), LabelRows()
    for path in label_files:
        print_log(f'OpenImagesMultiLabel: parsing "{path}"', logger='current')
        human.read(path, class_of)
    for path in machine_files:
        print_log(f'OpenImagesMultiLabel: parsing "{path}"', logger='current')
        machine.read(path, class_of, machine_threshold)
    h_ids, h_cls, h_val = human.take()
    m_ids, m_cls, _ = machine.take()
    stats = dict(
        human_rows=int(len(h_ids) + human.untrainable),
        machine_rows_kept=int(len(m_ids)),
        untrainable_rows=human.untrainable + machine.untrainable,
        machine_below_threshold=machine.below_threshold)

    if image_files:
        parts = [read_image_list(path) for path in image_files]
        sample_ids = np.concatenate([p[0] for p in parts])
        turns = np.concatenate([p[1] for p in parts])
        if len(np.unique(sample_ids)) != len(sample_ids):
            raise ValueError('OpenImagesMultiLabel: an image is listed in '
                             f'more than one of {list(image_files)}.')
    else:
        sample_ids = np.unique(np.concatenate([h_ids, m_ids]))
        turns = np.zeros(len(sample_ids), np.int8)

    if not len(sample_ids):
        raise ValueError('OpenImagesMultiLabel: no image in '
                         f'{list(image_files) or list(label_files)}.')
    order = np.argsort(sample_ids, kind='stable')
    sorted_ids = sample_ids[order]

    def rows_of(ids: np.ndarray, what: str) -> np.ndarray:
        """Sample row of every label (-1: the image is not listed)."""
        pos = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
        found = (sorted_ids[pos] == ids) if len(sorted_ids) else pos < 0
        stats[f'{what}_rows_of_unlisted_images'] = int((~found).sum())
        return np.where(found, order[pos], -1)

    h_key = _keys(rows_of(h_ids, 'human'), h_cls, num_classes)
    m_key = _keys(rows_of(m_ids, 'machine'), m_cls, num_classes)
    del h_ids, m_ids
    h_val = h_val[h_key >= 0]
    h_key = h_key[h_key >= 0]
    m_key = np.unique(m_key[m_key >= 0])

    # Merge repeats of one (image, class); a 1 and a 0 become ignored.
    srt = np.argsort(h_key, kind='stable')
    h_key, h_val = h_key[srt], h_val[srt]
    del srt
    starts = np.flatnonzero(np.r_[True, h_key[1:] != h_key[:-1]]) \
        if len(h_key) else np.zeros(0, np.int64)
    lo = np.minimum.reduceat(h_val, starts) if len(starts) else h_val
    hi = np.maximum.reduceat(h_val, starts) if len(starts) else h_val
    u_key = h_key[starts]
    u_val = np.where(lo == hi, lo, -1).astype(np.int8)
    stats['duplicate_rows_merged'] = int(len(h_key) - len(u_key))
    conflict = np.flatnonzero(lo != hi)
    stats['conflicts'] = int(len(conflict))
    stats['conflict_examples'] = [
        _describe(u_key[i], sample_ids, mids) for i in conflict[:_EXAMPLES]
    ]
    del h_key, h_val, lo, hi

    overridden = np.isin(m_key, u_key)
    stats['machine_labels_overridden_by_human'] = int(overridden.sum())
    keys = np.concatenate([u_key, m_key[~overridden]])
    vals = np.concatenate([u_val, np.ones(int((~overridden).sum()), np.int8)])
    srt = np.argsort(keys, kind='stable')
    keys, vals = keys[srt], vals[srt]
    del srt, u_key, u_val, m_key

    rows = keys // num_classes
    counts = np.bincount(rows, minlength=len(sample_ids))
    labelled = counts > 0
    stats['listed_images_without_label'] = int((~labelled).sum())
    # Keep only labelled samples: renumber the rows.
    offsets = np.zeros(int(labelled.sum()) + 1, np.int64)
    np.cumsum(counts[labelled], out=offsets[1:])
    arrays = dict(
        image_ids=sample_ids[labelled],
        turns=turns[labelled].astype(np.int8),
        offsets=offsets,
        classes=(keys % num_classes).astype(np.int16),
        values=vals.astype(np.int8))
    stats['samples'] = int(len(offsets) - 1)
    stats['labels'] = int(len(vals))
    return arrays, stats


def _keys(rows: np.ndarray, classes: np.ndarray, num_classes: int
          ) -> np.ndarray:
    """``row * C + class`` (int64); -1 where the row is -1."""
    key = rows.astype(np.int64) * num_classes + classes
    key[rows < 0] = -1
    return key


def _describe(key: int, sample_ids: np.ndarray, mids: List[str]) -> str:
    """``'<ImageID> <MID>'`` of a key."""
    row, cls = divmod(int(key), len(mids))
    return f'{format_image_id(sample_ids[row])} {mids[cls]}'


def cached_arrays(sources: Sequence[str], options: dict,
                  cache_dir: Optional[str],
                  build: Callable[[], Tuple[Dict[str, np.ndarray], dict]]
                  ) -> Tuple[Dict[str, np.ndarray], dict, Optional[str]]:
    """The index arrays, memory-mapped from the cache when it is valid.

    The entry is a folder ``openimages-<digest>/`` of one ``.npy`` file per
    array and ``meta.json`` (key and stats). Its key covers the source
    files' paths, modification times and sizes and ``options``; the folder
    is written under a temporary name and renamed, so a half-written entry
    is never read.

    Args:
        sources (Sequence[str]): Every file ``build`` reads.
        options (dict): Everything else that changes the result.
        cache_dir (str, optional): The cache folder; None: no cache.
        build (Callable): Returns ``(arrays, stats)``.

    Returns:
        tuple: ``(arrays, stats, folder)``; arrays are read-only memory
        maps when they come from (or went to) the cache; folder is None
        without a cache.
    """
    if cache_dir is None:
        arrays, stats = build()
        return arrays, stats, None
    key = digest([CACHE_VERSION, 'openimages', file_signature(sources),
                  options])
    name = digest([sorted(osp.abspath(p) for p in sources), options])[:16]
    folder = osp.join(cache_dir, f'openimages-{name}')
    loaded = _load(folder, key)
    if loaded is not None:
        print_log(f'OpenImagesMultiLabel: read the label index from the '
                  f'cache "{folder}".', logger='current')
        return loaded[0], loaded[1], folder
    arrays, stats = build()
    if _save(folder, key, arrays, stats):
        print_log(f'OpenImagesMultiLabel: cached the label index in '
                  f'"{folder}"; later runs memory-map it (rebuilt when a '
                  'source file changes).', logger='current')
        loaded = _load(folder, key)
        if loaded is not None:
            return loaded[0], loaded[1], folder
    return arrays, stats, None


def _load(folder: str, key: str):
    """``(arrays, stats)`` of a valid entry, else None."""
    try:
        with open(osp.join(folder, 'meta.json'), encoding='utf-8') as f:
            meta = json.load(f)
        if meta.get('key') != key:
            return None
        arrays = {
            name: np.load(osp.join(folder, f'{name}.npy'), mmap_mode='r')
            for name in ARRAYS
        }
    except (OSError, ValueError):
        return None
    return arrays, meta['stats']


def _save(folder: str, key: str, arrays: Dict[str, np.ndarray],
          stats: dict) -> bool:
    """Write an entry atomically; False (and a warning) on failure."""
    parent = osp.dirname(folder)
    tmp = None
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.openimages-', dir=parent)
        os.chmod(tmp, 0o755)
        for name in ARRAYS:
            np.save(osp.join(tmp, f'{name}.npy'), arrays[name])
        with open(osp.join(tmp, 'meta.json'), 'w', encoding='utf-8') as f:
            json.dump(dict(key=key, stats=stats), f)
        if osp.isdir(folder):  # an outdated entry of the same sources
            old = tempfile.mkdtemp(prefix='.openimages-old-', dir=parent)
            os.replace(folder, osp.join(old, 'entry'))
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, folder)
        return True
    except OSError as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        print_log(f'OpenImagesMultiLabel: could not write the cache "{folder}"'
                  f' ({err}); continuing without it. Pass cache=<a writable '
                  'folder> to cache elsewhere.', logger='current',
                  level=30)
        return False
