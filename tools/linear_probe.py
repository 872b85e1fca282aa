"""Linear-probe transfer of an ImageNet checkpoint: the Table 8 row.

    python tools/linear_probe.py IMAGENET_CHECKPOINT [--datasets aircraft dtd]
        [--data-root data] [--work-dir DIR] [--gpus 4] [--dry-run]
        [--collect-only] [--cfg-options KEY=VALUE ...]

For every dataset this trains ``configs/linear_probe/linear_r50_<name>.py``
(a linear classifier on the frozen backbone of IMAGENET_CHECKPOINT) with
``tools/train.py`` (``tools/dist_train.sh`` for ``--gpus`` > 1), one after
the other, then prints the top-1 accuracies as a markdown table row. The
ImageNet column is the last ``accuracy/top1`` logged in the checkpoint's own
work dir, if there is one.

``--dry-run`` prints the commands instead (to run them elsewhere, e.g. as
cluster jobs); ``--collect-only`` only reads finished work dirs.
``--data-root PARENT`` moves every dataset to ``PARENT/<its folder>``, the
folder being the last part of the config's ``data_root`` (for example
``PARENT/dtd``).
"""
import argparse
import json
import os.path as osp
import shlex
import subprocess
import sys
from glob import glob
from typing import Dict, List, Optional

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (registers the modules)
from mmengine.config import Config, DictAction
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs', 'linear_probe')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
METRIC = 'accuracy/top1'

# Table 8's columns, in the paper's order: dataset key -> column title.
PROBES = {
    'aircraft': 'Aircraft',
    'caltech101': 'Caltech101',
    'cars': 'Car',
    'cub': 'CUB',
    'dtd': 'DTD',
    'flowers102': 'Flower',
    'food101': 'Food101',
    'pets': 'Pets',
    'sun397': 'SUN',
}


def probe_config(key: str) -> str:
    """Path of the linear-probe config of dataset ``key``."""
    return osp.join(CONFIG_DIR, f'linear_r50_{key}.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Linear probes of an ImageNet ResNet-50 (Table 8)')
    parser.add_argument('checkpoint', help='ImageNet checkpoint (.pth)')
    parser.add_argument(
        '--datasets',
        nargs='+',
        choices=list(PROBES),
        default=list(PROBES),
        help='which probes to run (default: all nine)')
    parser.add_argument(
        '--data-root',
        help='parent folder of the datasets (default: each config\'s '
        'data_root, under data/)')
    parser.add_argument(
        '--work-dir',
        help='parent of the per-dataset work dirs (default: '
        'work_dirs/linear_probe/NAME)')
    parser.add_argument(
        '--name',
        help='row label (default: the folder holding the checkpoint, e.g. '
        'twoway_in1k_r50)')
    parser.add_argument(
        '--gpus', type=int, default=1, help='GPUs per probe (default 1)')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        '--dry-run', action='store_true', help='print the commands only')
    mode.add_argument(
        '--collect-only',
        action='store_true',
        help='train nothing; read the results of earlier runs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='extra overrides for every probe, passed on to tools/train.py, '
        'e.g. train_cfg.max_epochs=50')
    args = parser.parse_args(argv)
    if args.gpus < 1:
        parser.error('--gpus must be at least 1')
    # Absolute paths: the commands may run from another directory.
    args.checkpoint = osp.abspath(args.checkpoint)
    args.name = args.name or osp.basename(osp.dirname(args.checkpoint))
    args.work_dir = osp.abspath(
        args.work_dir or osp.join('work_dirs', 'linear_probe', args.name))
    if args.data_root:
        args.data_root = osp.abspath(args.data_root)
    return args


def parsed_options(raw: List[str]) -> dict:
    """``KEY=VALUE`` strings parsed the way tools/train.py parses them."""
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest='options')(None, namespace, raw)
    return namespace.options or {}


def overrides(key: str, args: argparse.Namespace) -> List[str]:
    """``--cfg-options`` of one probe: checkpoint, data, then the user's.

    The user's come last, so they win over the tool's.
    """
    opts = [f'model.backbone.init_cfg.checkpoint={args.checkpoint}']
    if args.data_root:
        cfg = Config.fromfile(probe_config(key))
        for loader in LOADERS:
            folder = osp.basename(
                osp.normpath(cfg[loader].dataset.data_root))
            opts.append(f'{loader}.dataset.data_root='
                        f'{osp.join(args.data_root, folder)}')
    return opts + list(args.cfg_options)


def train_command(key: str, args: argparse.Namespace) -> List[str]:
    """The tools/train.py (or dist_train.sh) command of one probe."""
    config = probe_config(key)
    work_dir = osp.join(args.work_dir, key)
    tail = ['--work-dir', work_dir, '--cfg-options'] + overrides(key, args)
    # An interrupted probe continues (train.py refuses a used work dir).
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        tail.insert(0, '--resume')
    if args.gpus > 1:
        return ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config,
                str(args.gpus)] + tail
    return [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config
            ] + tail


def check_checkpoint(args: argparse.Namespace) -> None:
    """Fail early unless the checkpoint holds exactly the probe's backbone.

    mmengine loads ``Pretrained`` weights non-strictly: a checkpoint of
    another architecture (or without ``backbone.`` keys) would silently
    leave the frozen backbone random and every probe meaningless.
    """
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'linear_probe: checkpoint {args.checkpoint} does '
                         'not exist.')
    cfg = Config.fromfile(probe_config(args.datasets[0]))
    cfg.merge_from_dict(parsed_options(args.cfg_options))
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg', None)
    expected = MODELS.build(backbone_cfg).state_dict()
    loaded = CheckpointLoader.load_checkpoint(args.checkpoint, 'cpu')
    loaded = loaded.get('state_dict', loaded)
    found = {
        k[len('backbone.'):]: v
        for k, v in loaded.items() if k.startswith('backbone.')
    }
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(found)
                      if expected[k].shape != found[k].shape)
    if missing or unexpected or reshaped:
        raise SystemExit(
            f'linear_probe: {args.checkpoint} does not fit the probe '
            f'backbone ({backbone_cfg.type}): {len(missing)} missing, '
            f'{len(unexpected)} unexpected, {len(reshaped)} differently '
            f'shaped backbone.* keys (e.g. '
            f'{(missing + unexpected + reshaped)[:3]}). Pass an mmpretrain '
            'classifier checkpoint of that backbone, such as one of '
            'configs/imagenet/*.')


def last_metric(work_dir: str, metric: str = METRIC) -> Optional[float]:
    """The last ``metric`` logged by the newest run in ``work_dir``."""
    logs = sorted(glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for log in reversed(logs):
        values = []
        with open(log) as f:
            for line in f:
                record = json.loads(line)
                if metric in record:
                    values.append(float(record[metric]))
        if values:
            return values[-1]
    return None


def markdown_row(name: str, results: Dict[str, Optional[float]],
                 imagenet: Optional[float]) -> str:
    """Table 8 header and one row (``-`` where a result is missing)."""

    def cell(value):
        return '-' if value is None else f'{value:.2f}'

    titles = ['ImageNet'] + [PROBES[k] for k in results]
    cells = [cell(imagenet)] + [cell(v) for v in results.values()]
    return '\n'.join([
        '| Model | ' + ' | '.join(titles) + ' |',
        '|' + '---|' * (len(titles) + 1),
        f'| {name} | ' + ' | '.join(cells) + ' |',
    ])


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        for key in args.datasets:
            print(shlex.join(train_command(key, args)))
        return 0
    failed = []
    if not args.collect_only:
        check_checkpoint(args)
        for key in args.datasets:
            print(f'linear_probe: {key} ...', flush=True)
            if subprocess.run(train_command(key, args)).returncode:
                failed.append(key)
    results = {
        key: last_metric(osp.join(args.work_dir, key))
        for key in args.datasets
    }
    imagenet = last_metric(osp.dirname(osp.abspath(args.checkpoint)))
    print(markdown_row(args.name, results, imagenet))
    missing = failed + [k for k, v in results.items()
                        if v is None and k not in failed]
    if missing:
        print(f'linear_probe: no result for {", ".join(missing)} (see the '
              f'logs under {args.work_dir}).', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
