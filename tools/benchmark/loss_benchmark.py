"""The paper's protocol in miniature, on real images available offline.

    python tools/benchmark/loss_benchmark.py            # ~30 min, 2 CPU cores
    python tools/benchmark/loss_benchmark.py --quick    # smoke run, < 1 min
    python tools/benchmark/loss_benchmark.py --gpu      # bigger data and net

Needs Fashion-MNIST (``apt-get install -y dataset-fashion-mnist``, or
``make bench-data``). For every seed:

1. **Pretraining** (the ImageNet analogue, Sec. 4.4 / Table 8): a small
   ResNet learns single-label Fashion-MNIST from scratch with softmax
   cross-entropy, the two-way loss and ASL. Each backbone is then frozen
   and a linear classifier (logistic regression) is fitted on its features
   of another dataset, scikit-learn's handwritten digits (all train scans,
   and 10 per class): Table 8's linear-probe transfer.
2. **Fine-tuning** (Sec. 4.1 / Table 7): the softmax-pretrained backbone is
   fine-tuned on multi-label Fashion-MNIST mosaics (those of
   ``tools/misc/make_mosaic_data.py``: train mosaics from the official
   train images, val mosaics from the test images, long-tailed classes)
   with each loss — two-way, softmax (eq. 18), BCE, frequency-weighted BCE,
   focal, ASL, multi-similarity — under one schedule: SGD (Nesterov),
   cosine per iteration, 10x learning rate for the classifier, the same
   buckets, the same seeds (so every loss sees the same initial head and
   batch order). mAP@class and mAP@sample are measured after every epoch.

Everything runs through what mmtwoway ships: the mmengine ``Runner``,
mmpretrain's ``ImageClassifier``, ``CocoMultiLabel``, ``TwoWayLinearClsHead``
and ``MultiLabelMAP``; only the loss changes between runs. The results go
into ``docs/benchmark.md`` (between the ``loss_benchmark`` markers; the rest
of the file is kept) and a PNG plot beside it. Finished runs are cached in
``WORK_DIR/results.json``; running the same command again only trains what
is missing (``--fresh`` retrains all).

This file is the command line; the machinery is in
``tools/benchmark/loss_bench/`` (settings, configs, training, report).
"""
import argparse
import os.path as osp
import shlex
import sys
import time
from typing import Optional, Sequence

import torch

# Run as a script: put the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.benchmark.loss_bench.data import FASHION_MNIST_ROOT  # noqa
from tools.benchmark.loss_bench.report import write_report  # noqa: E402
from tools.benchmark.loss_bench.settings import (  # noqa: E402
    finetune_losses, resolve_setting, select_losses)
from tools.benchmark.loss_bench.training import run_all  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the command line (``sys.argv[1:]`` if None)."""
    parser = argparse.ArgumentParser(
        description='Two-way loss vs other multi-label losses on Fashion-'
        'MNIST mosaics, and Table-8-style transfer (see docs/benchmark.md).')
    size = parser.add_mutually_exclusive_group()
    size.add_argument('--quick', action='store_true',
                      help='tiny smoke run (under a minute)')
    size.add_argument('--gpu', action='store_true',
                      help='bigger data and network, for a GPU')
    parser.add_argument('--seeds', type=int,
                        help='number of seeds (default: the setting\'s)')
    parser.add_argument('--losses', nargs='+', metavar='NAME',
                        help='fine-tune only these losses (display names)')
    parser.add_argument('--epochs', type=int,
                        help='fine-tuning epochs (default: the setting\'s)')
    parser.add_argument('--lr', type=float,
                        help='fine-tuning backbone lr; the classifier gets '
                        '10x (default: the setting\'s)')
    parser.add_argument('--work-dir', help='default work_dirs/loss_benchmark'
                        '_<setting>')
    parser.add_argument('--out', default=osp.join(ROOT, 'docs',
                                                  'benchmark.md'),
                        help='markdown report (default docs/benchmark.md)')
    parser.add_argument('--data-root', default=FASHION_MNIST_ROOT,
                        help='Fashion-MNIST IDX folder (default '
                        f'{FASHION_MNIST_ROOT})')
    parser.add_argument('--fresh', action='store_true',
                        help='retrain everything, ignoring cached results')
    parser.add_argument(
        '--threads', type=int,
        help='torch CPU threads (default: torch\'s choice); 1 is much faster '
        'than 2 when other jobs keep the cores busy')
    args = parser.parse_args(argv)
    for name in ('seeds', 'epochs'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1')
    if args.lr is not None and args.lr <= 0:
        parser.error('--lr must be > 0')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be >= 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark and write the report.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        dict: ``pretrain`` and ``finetune`` (name -> list of per-seed
        results) and ``missing`` (name -> reason).
    """
    args = parse_args(argv)
    name = 'quick' if args.quick else 'gpu' if args.gpu else 'default'
    setting = resolve_setting(name, seeds=args.seeds, epochs=args.epochs,
                              lr=args.lr)
    work_dir = args.work_dir or osp.join(ROOT, 'work_dirs',
                                         f'loss_benchmark_{name}')
    if args.threads:
        torch.set_num_threads(args.threads)
    try:  # checked before any data is built: a typo fails at once
        losses = select_losses(finetune_losses(setting), args.losses)
    except ValueError as err:
        raise SystemExit(f'--losses: {err}')
    start = time.perf_counter()
    results = run_all(setting, work_dir, args.data_root, losses, args.fresh)
    command = shlex.join(['python', 'tools/benchmark/loss_benchmark.py',
                          *(argv if argv is not None else sys.argv[1:])])
    plot = write_report(args.out, setting, results, command, ROOT)
    print(f'loss_benchmark: wrote {args.out} and {osp.basename(plot)} in '
          f'{(time.perf_counter() - start) / 60:.1f} min', flush=True)
    return {k: results[k] for k in ('pretrain', 'finetune', 'missing')}


if __name__ == '__main__':
    main()
