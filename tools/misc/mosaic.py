"""Synthetic multi-label datasets in the COCO layout ("mosaics").

A mosaic pastes a few small single-label images (digits, clothes...) at
random non-overlapping places on a blank canvas; its labels are the set of
classes it shows. Written as a COCO instances file plus an image folder, such
a dataset is read by :class:`~mmtwoway.datasets.CocoMultiLabel` exactly like
MS-COCO, so the whole training pipeline can run end to end in minutes on a
CPU. :func:`write_mosaic_dataset` writes a train and a val split from an
:class:`ItemPool`; ``tools/misc/make_mosaic_data.py`` does so from
scikit-learn's digits or Fashion-MNIST (``tools/misc/make_demo_data.py`` is
its digits shortcut); other sources only need a ``(N, h, w)`` or
``(N, h, w, 3)`` uint8 array and their labels.

Everything here takes a ``numpy.random.Generator``, so a seed reproduces the
files byte for byte.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from tools.misc.coco_writer import CocoWriter
from tools.misc.item_pools import ItemPool

# A COCO bounding box: [x, y, width, height] in pixels.
BBox = List[int]


def geometric_class_probs(num_classes: int,
                          imbalance: float = 10.0) -> np.ndarray:
    """Class probabilities that decay geometrically from class 0.

    Real multi-label data is long-tailed (COCO's ``person`` is in half the
    images, ``hair drier`` in 0.2%); a uniform synthetic set would hide the
    positive/negative imbalance the Two-way loss is about.

    Args:
        num_classes (int): Number of classes C.
        imbalance (float): Ratio of the first class's probability to the
            last's; 1 gives uniform probabilities. Defaults to 10.

    Returns:
        np.ndarray: Shape (C,), positive, summing to 1, non-increasing.
    """
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}')
    if imbalance < 1:
        raise ValueError(f'imbalance must be >= 1, got {imbalance}')
    if num_classes == 1:
        return np.ones(1)
    ratio = imbalance**(-1.0 / (num_classes - 1))
    probs = ratio**np.arange(num_classes)
    return probs / probs.sum()


def resize_item(item: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 item to ``size`` x ``size`` pixels (bilinear).

    Args:
        item (np.ndarray): (h, w) or (h, w, 3) uint8 image.
        size (int): Output side in pixels.

    Returns:
        np.ndarray: (size, size) or (size, size, 3) uint8 image.
    """
    if item.dtype != np.uint8:
        raise TypeError(f'items must be uint8, got {item.dtype}')
    img = Image.fromarray(item).resize((size, size), Image.BILINEAR)
    return np.asarray(img)


def free_positions(occupied: np.ndarray, height: int,
                   width: int) -> np.ndarray:
    """Top-left corners where a box fits without touching occupied pixels.

    Uses a summed-area table, so every position is tested at once and a box
    is refused only when there really is no room for it (rejection sampling
    would give up on crowded canvases that still have space).

    Args:
        occupied (np.ndarray): (H, W) bool mask of taken pixels.
        height (int): Box height.
        width (int): Box width.

    Returns:
        np.ndarray: (K, 2) int array of ``(y, x)`` corners, row-major order;
        K = 0 when the box fits nowhere.
    """
    H, W = occupied.shape
    if height > H or width > W:
        return np.zeros((0, 2), dtype=np.int64)
    table = np.zeros((H + 1, W + 1), dtype=np.int64)
    table[1:, 1:] = occupied.astype(np.int64).cumsum(0).cumsum(1)
    window = (table[height:, width:] - table[:-height, width:] -
              table[height:, :-width] + table[:-height, :-width])
    return np.argwhere(window == 0)


def _place_once(canvas_size: int, sizes: Sequence[Tuple[int, int]],
                rng: np.random.Generator) -> List[Optional[BBox]]:
    """One sequential placement; None for items that found no room."""
    occupied = np.zeros((canvas_size, canvas_size), dtype=bool)
    boxes: List[Optional[BBox]] = []
    for h, w in sizes:
        corners = free_positions(occupied, h, w)
        if len(corners) == 0:
            boxes.append(None)
            continue
        y, x = (int(v) for v in corners[rng.integers(len(corners))])
        occupied[y:y + h, x:x + w] = True
        boxes.append([x, y, int(w), int(h)])
    return boxes


def place_items(canvas_size: int,
                sizes: Sequence[Tuple[int, int]],
                rng: np.random.Generator,
                attempts: int = 10) -> List[Optional[BBox]]:
    """Choose non-overlapping boxes for items.

    Items are placed one after another, each at a position drawn uniformly
    among those still free. An early item placed mid-canvas can leave no
    room for a later one although a packing exists, so an incomplete
    placement is redrawn up to ``attempts`` times; the first placement that
    fits the most items wins.

    Args:
        canvas_size (int): Side of the square canvas.
        sizes (Sequence[tuple[int, int]]): ``(height, width)`` per item.
        rng (np.random.Generator): Random source.
        attempts (int): Most placements tried. Defaults to 10.

    Returns:
        list[list[int] | None]: Per item, its COCO box ``[x, y, w, h]``, or
        None if it found no room in the best placement.
    """
    best: List[Optional[BBox]] = []
    best_placed = -1
    for _ in range(max(1, attempts)):
        boxes = _place_once(canvas_size, sizes, rng)
        placed = sum(box is not None for box in boxes)
        if placed > best_placed:
            best, best_placed = boxes, placed
        if placed == len(sizes):
            break
    return best


def compose_canvas(items: Sequence[np.ndarray],
                   canvas_size: int,
                   rng: np.random.Generator,
                   background: int = 0
                   ) -> Tuple[np.ndarray, List[Optional[BBox]]]:
    """Paste items at random non-overlapping places on an RGB canvas.

    Args:
        items (Sequence[np.ndarray]): (h, w) or (h, w, 3) uint8 items; grey
            ones are replicated to RGB.
        canvas_size (int): Side of the square canvas.
        rng (np.random.Generator): Random source.
        background (int): Grey level of the empty canvas. Defaults to 0.

    Returns:
        tuple[np.ndarray, list]: The (canvas_size, canvas_size, 3) uint8
        canvas, and per item its box ``[x, y, w, h]`` or None if it did not
        fit (a skipped item is not drawn and must not be labelled).
    """
    canvas = np.full((canvas_size, canvas_size, 3), background, np.uint8)
    boxes = place_items(canvas_size, [item.shape[:2] for item in items], rng)
    for item, box in zip(items, boxes):
        if box is None:
            continue
        x, y, w, h = box
        canvas[y:y + h, x:x + w] = item[..., None] if item.ndim == 2 else item
    return canvas, boxes


def build_mosaic_split(pool: np.ndarray,
                       pool_labels: Sequence[int],
                       writer: CocoWriter,
                       category_ids: Sequence[int],
                       image_dir: str,
                       num_images: int,
                       rng: np.random.Generator,
                       canvas_size: int = 32,
                       max_items: int = 3,
                       item_size: Tuple[int, int] = (12, 16),
                       class_probs: Optional[Sequence[float]] = None,
                       file_prefix: str = '',
                       background: int = 0) -> List[Dict]:
    """Draw mosaics from a pool of labelled items and record them.

    Per canvas: the number of items is uniform in ``1..max_items``; each
    item's class is drawn from ``class_probs`` (with replacement, so a
    canvas may show a class twice, like several people in a COCO image),
    then a random pool item of that class is resized to a side uniform in
    ``item_size`` and pasted without overlap. Items that find no room are
    skipped and not annotated; the first always fits.

    Args:
        pool (np.ndarray): (N, h, w) or (N, h, w, 3) uint8 items.
        pool_labels (Sequence[int]): Class index (0..C-1) of each item.
        writer (CocoWriter): Receives the image and annotation records.
        category_ids (Sequence[int]): COCO category id of each class index.
        image_dir (str): Folder the PNG canvases are written to.
        num_images (int): Number of canvases.
        rng (np.random.Generator): Random source.
        canvas_size (int): Canvas side in pixels. Defaults to 32.
        max_items (int): Most items per canvas. Defaults to 3.
        item_size (tuple[int, int]): Inclusive range of item sides.
            Defaults to (12, 16).
        class_probs (Sequence[float], optional): Probability of each class;
            uniform if None.
        file_prefix (str): Prefix of the file names, which are
            ``f'{file_prefix}{image_id:06d}.png'``. Defaults to ''.
        background (int): Grey level of the canvas. Defaults to 0.

    Returns:
        list[dict]: Per canvas, ``dict(image_id, file_name, labels,
        sources)`` with the classes and pool indices of the drawn items, in
        drawing order (for checks and statistics).
    """
    pool_labels = np.asarray(pool_labels)
    num_classes = len(category_ids)
    lo, hi = item_size
    if not 1 <= lo <= hi <= canvas_size:
        raise ValueError(f'item_size {item_size} must satisfy 1 <= min <= '
                         f'max <= canvas_size ({canvas_size})')
    if max_items < 1:
        raise ValueError(f'max_items must be >= 1, got {max_items}')
    if len(pool) != len(pool_labels):
        raise ValueError(f'{len(pool)} items but {len(pool_labels)} labels')
    by_class = [np.flatnonzero(pool_labels == c) for c in range(num_classes)]
    if class_probs is None:
        class_probs = np.full(num_classes, 1.0 / num_classes)
    class_probs = np.asarray(class_probs, dtype=float)
    if len(class_probs) != num_classes:
        raise ValueError(f'{len(class_probs)} class probabilities for '
                         f'{num_classes} classes')
    empty = [c for c in range(num_classes)
             if class_probs[c] > 0 and len(by_class[c]) == 0]
    if empty:
        raise ValueError(f'classes {empty} have no item in the pool')

    os.makedirs(image_dir, exist_ok=True)
    records = []
    for _ in range(num_images):
        count = int(rng.integers(1, max_items + 1))
        classes = rng.choice(num_classes, size=count, p=class_probs)
        sources = [int(rng.choice(by_class[c])) for c in classes]
        sides = rng.integers(lo, hi + 1, size=count)
        items = [resize_item(pool[s], int(n)) for s, n in zip(sources, sides)]
        canvas, boxes = compose_canvas(items, canvas_size, rng, background)

        file_name = f'{file_prefix}{writer.next_image_id:06d}.png'
        Image.fromarray(canvas).save(osp.join(image_dir, file_name))
        image_id = writer.add_image(file_name, canvas_size, canvas_size)
        record = dict(
            image_id=image_id, file_name=file_name, labels=[], sources=[])
        for cls, src, box in zip(classes, sources, boxes):
            if box is None:  # no room left: not drawn, so not a label
                continue
            writer.add_annotation(image_id, category_ids[cls], box)
            record['labels'].append(int(cls))
            record['sources'].append(src)
        records.append(record)
    return records


def write_mosaic_dataset(out_dir: str,
                         pool: ItemPool,
                         num_train: int,
                         num_val: int,
                         seed: int = 0,
                         canvas_size: int = 32,
                         max_items: int = 3,
                         item_size: Tuple[int, int] = (12, 16),
                         imbalance: float = 10.0) -> Dict:
    """Write a train and a val mosaic split in the COCO layout.

    Output, read by ``CocoMultiLabel`` like COCO 2014::

        out_dir/annotations/instances_train.json   (data_prefix 'train')
        out_dir/annotations/instances_val.json     (data_prefix 'val')
        out_dir/train/train_000001.png ...
        out_dir/val/val_000001.png ...

    Class frequencies follow :func:`geometric_class_probs` (class 0 the
    most frequent, the last ``imbalance`` times rarer). Each split has its
    own random stream spawned from ``seed``, so ``num_train`` does not
    change the val split; the same arguments give byte-identical files.

    Args:
        out_dir (str): Output folder.
        pool (ItemPool): The items; train mosaics use its train part, val
            mosaics its held-out part.
        num_train (int): Number of train mosaics.
        num_val (int): Number of val mosaics.
        seed (int): Random seed. Defaults to 0.
        canvas_size (int): Canvas side in pixels. Defaults to 32.
        max_items (int): Most items per canvas. Defaults to 3.
        item_size (tuple[int, int]): Inclusive range of item sides.
            Defaults to (12, 16).
        imbalance (float): Frequency ratio of the most to the least common
            class. Defaults to 10.

    Returns:
        dict: ``out_dir``, and per split (``'train'``, ``'val'``) the number
        of ``images`` and the mean ``labels_per_image`` (distinct classes).
    """
    probs = geometric_class_probs(len(pool.classes), imbalance)
    categories = [
        dict(id=cid, name=name, supercategory=pool.supercategory)
        for cid, name in zip(pool.category_ids, pool.classes)
    ]
    train_rng, val_rng = (np.random.default_rng(s)
                          for s in np.random.SeedSequence(seed).spawn(2))
    summary: Dict = dict(out_dir=out_dir)
    for split, images, labels, count, rng in (
            ('train', pool.train_images, pool.train_labels, num_train,
             train_rng),
            ('val', pool.held_out_images, pool.held_out_labels, num_val,
             val_rng)):
        writer = CocoWriter(categories)
        records = build_mosaic_split(
            images,
            labels,
            writer,
            pool.category_ids,
            image_dir=osp.join(out_dir, split),
            num_images=count,
            rng=rng,
            canvas_size=canvas_size,
            max_items=max_items,
            item_size=tuple(item_size),
            class_probs=probs,
            file_prefix=f'{split}_')
        writer.dump(
            osp.join(out_dir, 'annotations', f'instances_{split}.json'),
            description=f'mmtwoway {pool.name} mosaics, {split} split, '
            f'seed {seed}')
        per_image = [len(set(r['labels'])) for r in records]
        summary[split] = dict(
            images=len(records), labels_per_image=float(np.mean(per_image)))
    return summary
