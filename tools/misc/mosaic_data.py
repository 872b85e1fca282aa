"""Build a multi-label dataset of real-image mosaics in the MS-COCO layout.

The command line of ``tools/misc/make_mosaic_data.py`` and
``tools/misc/make_demo_data.py`` (the digits shortcut, :func:`demo_main`).

Each image is a black canvas with 1..``--max-items`` real single-label
items, resized to a side in ``--item-size`` and placed without overlap; its
labels are the classes it shows. Classes are drawn with geometrically
decaying probabilities (class 0 the most frequent, the last ``--imbalance``
times rarer), so the positive/negative imbalance that the Two-way loss
addresses is real.

Sources (``--source``):

* ``fashion-mnist``: Fashion-MNIST's 70,000 28x28 photos of clothing in 10
  classes (``apt-get install -y dataset-fashion-mnist`` or
  ``make bench-data``; ``--data-root`` for another copy of the IDX files).
  Train mosaics use only the official 60,000 training images, val mosaics
  only the 10,000 test images.
* ``digits``: scikit-learn's 1797 bundled 8x8 handwritten digit scans,
  split once into train / held-out parts with a fixed seed
  (``tools/misc/make_demo_data.py`` is this source's shortcut).

Output, read by ``CocoMultiLabel`` like COCO 2014::

    OUT_DIR/annotations/instances_train.json   (data_prefix 'train')
    OUT_DIR/annotations/instances_val.json     (data_prefix 'val')
    OUT_DIR/train/train_000001.png ...
    OUT_DIR/val/val_000001.png ...

The same arguments give byte-identical files.

Usage::

    python tools/misc/make_mosaic_data.py --source fashion-mnist data/fashion
    python tools/misc/make_mosaic_data.py --source digits data/digits
"""
import argparse
import time
from typing import Callable, Dict, Optional, Sequence

from tools.misc import idx, item_pools, mosaic

#: Fashion-MNIST's category ids: 1..10 in label order.
FASHION_CATEGORY_IDS = tuple(range(1, len(idx.FASHION_MNIST_CLASSES) + 1))


def fashion_mnist_item_pool(root: str = idx.FASHION_MNIST_ROOT):
    """Fashion-MNIST as an item pool: official train items for train
    mosaics, official test items for val mosaics.

    Args:
        root (str): Folder with the four IDX files.

    Returns:
        ItemPool: The pool (see ``tools.misc.item_pools.ItemPool``).
    """
    train = idx.load_fashion_mnist(root, 'train')
    test = idx.load_fashion_mnist(root, 'test')
    return item_pools.ItemPool('Fashion-MNIST', idx.FASHION_MNIST_CLASSES,
                           FASHION_CATEGORY_IDS, 'fashion', *train, *test)


#: ``--source`` -> (pool loader taking ``--data-root``, default options).
SOURCES: Dict[str, tuple] = {
    'fashion-mnist': (fashion_mnist_item_pool,
                      dict(num_train=4000, num_val=1000, canvas=56,
                           max_items=4)),
    'digits': (lambda root: item_pools.digits_item_pool(),
               dict(num_train=1200, num_val=400, canvas=32, max_items=3)),
}


def build_parser(prog: Optional[str] = None,
                 source: Optional[str] = None) -> argparse.ArgumentParser:
    """The command line parser.

    Args:
        prog (str, optional): Program name shown in messages.
        source (str, optional): Fix the source (no ``--source`` option);
            used by ``make_demo_data.py``.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description='Build a COCO-layout multi-label dataset of mosaics of '
        'real single-label images' +
        (f' ({source})' if source else '') + '.')
    parser.add_argument('out_dir', help='output folder')
    if source is None:
        parser.add_argument(
            '--source', required=True, choices=sorted(SOURCES),
            help='where the items come from')
        parser.add_argument(
            '--data-root',
            help='fashion-mnist only: folder with the IDX files (default '
            f'{idx.FASHION_MNIST_ROOT})')
    else:
        parser.set_defaults(source=source, data_root=None)
    parser.add_argument('--num-train', type=int,
                        help='number of train images (default: fashion-mnist '
                        '4000, digits 1200)')
    parser.add_argument('--num-val', type=int,
                        help='number of val images (default: fashion-mnist '
                        '1000, digits 400)')
    parser.add_argument('--canvas', type=int,
                        help='canvas side in pixels (default: fashion-mnist '
                        '56, digits 32)')
    parser.add_argument('--max-items', type=int,
                        help='most items per image (default: fashion-mnist 4,'
                        ' digits 3)')
    parser.add_argument(
        '--item-size', type=int, nargs=2, metavar=('MIN', 'MAX'),
        help='range of item sides in pixels (default: 3/8 to 1/2 of the '
        'canvas, e.g. 12..16 for 32)')
    parser.add_argument(
        '--imbalance', type=float, default=10.0,
        help='frequency ratio of the most to the least common class '
        '(default 10)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (default 0)')
    return parser


def parse_args(argv: Optional[Sequence[str]] = None,
               prog: Optional[str] = None,
               source: Optional[str] = None) -> argparse.Namespace:
    """Parse and check the arguments, filling per-source defaults.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.
        prog (str, optional): Program name shown in messages.
        source (str, optional): Fix the source, see :func:`build_parser`.

    Returns:
        argparse.Namespace: The checked arguments.
    """
    parser = build_parser(prog, source)
    args = parser.parse_args(argv)
    if args.source != 'fashion-mnist' and args.data_root is not None:
        parser.error('--data-root only applies to --source fashion-mnist')
    for name, value in SOURCES[args.source][1].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
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
    if args.imbalance < 1:
        parser.error(f'--imbalance must be >= 1, got {args.imbalance}')
    return args


def run(args: argparse.Namespace, prog: str = 'make_mosaic_data') -> dict:
    """Write the dataset described by checked ``args``.

    Args:
        args (argparse.Namespace): From :func:`parse_args`.
        prog (str): Name printed in the summary line.

    Returns:
        dict: ``out_dir``, ``source``, ``classes``, per split the number of
        ``images`` and mean ``labels_per_image``, and ``seconds``.
    """
    start = time.perf_counter()
    loader: Callable = SOURCES[args.source][0]
    pool = loader(args.data_root or idx.FASHION_MNIST_ROOT)
    summary = mosaic.write_mosaic_dataset(
        args.out_dir,
        pool,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        canvas_size=args.canvas,
        max_items=args.max_items,
        item_size=tuple(args.item_size),
        imbalance=args.imbalance)
    summary.update(
        source=args.source,
        classes=list(pool.classes),
        seconds=time.perf_counter() - start)
    print(f'{prog}: {summary["train"]["images"]} train + '
          f'{summary["val"]["images"]} val images, {len(pool.classes)} '
          f'classes ({pool.name}), '
          f'{summary["train"]["labels_per_image"]:.2f} / '
          f'{summary["val"]["labels_per_image"]:.2f} labels per image '
          f'(train / val), written to {args.out_dir} in '
          f'{summary["seconds"]:.1f} s')
    return summary


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Write the dataset; return a summary (also printed on one line)."""
    return run(parse_args(argv))


def demo_main(argv: Optional[Sequence[str]] = None) -> dict:
    """``make_demo_data.py``: the digits source with its defaults."""
    args = parse_args(argv, prog='make_demo_data.py', source='digits')
    return run(args, prog='make_demo_data')
