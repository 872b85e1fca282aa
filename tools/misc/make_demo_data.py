"""Build a small multi-label demo dataset in the MS-COCO layout.

Each image is a black canvas with 1..``--max-items`` handwritten digits from
scikit-learn's bundled ``load_digits`` (1797 real 8x8 scans, no download),
upscaled and placed without overlap; its labels are the digits it shows.
Digit classes are drawn with geometrically decaying probabilities (digit 0
the most frequent, digit 9 ``--imbalance`` times rarer), so the
positive/negative imbalance that the Two-way loss addresses is real.

Output, read by ``CocoMultiLabel`` like COCO 2014::

    OUT_DIR/annotations/instances_train.json   (data_prefix 'train')
    OUT_DIR/annotations/instances_val.json     (data_prefix 'val')
    OUT_DIR/train/train_000001.png ...
    OUT_DIR/val/val_000001.png ...

The 10 categories are named 'zero'..'nine' and have non-contiguous ids
(``DIGIT_CATEGORY_IDS``), like COCO's 1..90 for 80 classes, so the id ->
class index mapping is exercised; class index = digit. Train canvases use
only digits of a fixed train part of the 1797 scans and val canvases only
the held-out part. The same arguments give byte-identical files.

Usage::

    python tools/misc/make_demo_data.py data/demo [--num-train 1200]
"""
import argparse
import importlib.util
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np


def _load_mosaic():
    """Import ``mmtwoway.datasets.mosaic`` without ``import mmtwoway``.

    ``import mmtwoway`` registers everything in mmpretrain and so loads torch
    and mmpretrain (about 5 s); the mosaic module needs numpy and Pillow
    only, so we load its file directly and the tool runs in about a second.
    """
    if 'mmtwoway.datasets.mosaic' in sys.modules:
        return sys.modules['mmtwoway.datasets.mosaic']
    # The checkout this tool belongs to first, else the installed package.
    path = osp.join(
        osp.dirname(osp.abspath(__file__)), '..', '..', 'mmtwoway',
        'datasets', 'mosaic.py')
    if not osp.isfile(path):
        spec = importlib.util.find_spec('mmtwoway')  # finds, not imports
        if spec is None or not spec.submodule_search_locations:
            raise ImportError('mmtwoway not found: run `pip install -e .` in '
                              'the repository root.')
        path = osp.join(
            list(spec.submodule_search_locations)[0], 'datasets',
            'mosaic.py')
    spec = importlib.util.spec_from_file_location('_mmtwoway_mosaic', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_mosaic = _load_mosaic()
CocoWriter = _mosaic.CocoWriter
build_mosaic_split = _mosaic.build_mosaic_split
geometric_class_probs = _mosaic.geometric_class_probs
split_pool = _mosaic.split_pool

DIGIT_NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
               'eight', 'nine')
# Ascending, with gaps: sorted by id the categories are still zero..nine.
DIGIT_CATEGORY_IDS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
# Fraction of each digit's scans reserved for val canvases, and the seed of
# that split: fixed, so that val never shares a scan with train whatever
# --seed is.
HELD_OUT_FRACTION = 1 / 3
SPLIT_SEED = 20230618


def load_digit_pool() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 images.

    Returns:
        tuple[np.ndarray, np.ndarray]: (1797, 8, 8) uint8 images (white
        digit on black, 0..255) and their (1797,) labels 0..9.
    """
    from sklearn.datasets import load_digits
    digits = load_digits()
    # The scans hold ink counts 0..16.
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def digit_split(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The fixed, stratified train / held-out split of the digit scans."""
    return split_pool(labels, HELD_OUT_FRACTION, SPLIT_SEED)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build a COCO-layout multi-label demo dataset of '
        'handwritten digit mosaics.')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--num-train', type=int, default=1200,
                        help='number of train images (default 1200)')
    parser.add_argument('--num-val', type=int, default=400,
                        help='number of val images (default 400)')
    parser.add_argument('--canvas', type=int, default=32,
                        help='canvas side in pixels (default 32)')
    parser.add_argument('--max-items', type=int, default=3,
                        help='most digits per image (default 3)')
    parser.add_argument(
        '--item-size', type=int, nargs=2, metavar=('MIN', 'MAX'),
        help='range of digit sides in pixels (default: 3/8 to 1/2 of '
        'the canvas, i.e. 12..16 for 32)')
    parser.add_argument(
        '--imbalance', type=float, default=10.0,
        help='frequency ratio of the most to the least common digit '
        '(default 10)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (default 0)')
    args = parser.parse_args(argv)
    if args.item_size is None:
        args.item_size = (max(1, args.canvas * 3 // 8), max(1,
                                                             args.canvas // 2))
    for name in ('num_train', 'num_val', 'canvas', 'max_items'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    lo, hi = args.item_size
    if not 1 <= lo <= hi <= args.canvas:
        parser.error(f'--item-size {lo} {hi} must satisfy 1 <= MIN <= MAX '
                     f'<= --canvas ({args.canvas})')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Write the dataset; return a summary (also printed on one line)."""
    args = parse_args(argv)
    start = time.perf_counter()
    images, labels = load_digit_pool()
    train_idx, val_idx = digit_split(labels)
    probs = geometric_class_probs(len(DIGIT_NAMES), args.imbalance)
    categories = [
        dict(id=cid, name=name, supercategory='digit')
        for cid, name in zip(DIGIT_CATEGORY_IDS, DIGIT_NAMES)
    ]
    # One generator per split, so --num-train does not change val.
    train_rng, val_rng = (np.random.default_rng(s)
                          for s in np.random.SeedSequence(args.seed).spawn(2))

    summary = dict(out_dir=args.out_dir)
    for split, idx, count, rng in (('train', train_idx, args.num_train,
                                    train_rng),
                                   ('val', val_idx, args.num_val, val_rng)):
        writer = CocoWriter(categories)
        records = build_mosaic_split(
            images[idx],
            labels[idx],
            writer,
            DIGIT_CATEGORY_IDS,
            image_dir=osp.join(args.out_dir, split),
            num_images=count,
            rng=rng,
            canvas_size=args.canvas,
            max_items=args.max_items,
            item_size=tuple(args.item_size),
            class_probs=probs,
            file_prefix=f'{split}_')
        writer.dump(
            osp.join(args.out_dir, 'annotations', f'instances_{split}.json'),
            description=f'mmtwoway digit mosaics, {split} split, seed '
            f'{args.seed}')
        per_image: List[int] = [len(set(r['labels'])) for r in records]
        summary[split] = dict(
            images=len(records), labels_per_image=float(np.mean(per_image)))
    summary['seconds'] = time.perf_counter() - start

    print(f'make_demo_data: {summary["train"]["images"]} train + '
          f'{summary["val"]["images"]} val images, 10 classes, '
          f'{summary["train"]["labels_per_image"]:.2f} / '
          f'{summary["val"]["labels_per_image"]:.2f} labels per image '
          f'(train / val), written to {args.out_dir} in '
          f'{summary["seconds"]:.1f} s')
    return summary


if __name__ == '__main__':
    main()
