"""Evaluate a checkpoint on a config's test set (mAP@class, mAP@sample).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [...]
"""
import argparse
import os
import os.path as osp
import sys

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmtwoway.utils.checkpoint import load_strict
from mmtwoway.utils.runtime import adapt_to_machine


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save the logs')
    parser.add_argument(
        '--out', help='dump every sample\'s scores and labels to this pickle')
    parser.add_argument(
        '--calibration',
        help='a calibration file of tools/calibrate.py: the head decides '
        'label sets with it (reported by MultiLabelF1)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs',
        osp.splitext(osp.basename(args.config))[0])
    # Loaded strictly below, not by the Runner: its load_from is for
    # fine-tuning and only logs a head of another class count, which then
    # stays randomly initialised and gives a wrong mAP.
    cfg.load_from = None
    if args.calibration:
        cfg.model.head.calibration = args.calibration
    if args.out:
        cfg.test_evaluator = list(
            cfg.test_evaluator if isinstance(cfg.test_evaluator, (
                list, tuple)) else [cfg.test_evaluator])
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    adapt_to_machine(cfg)
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    try:
        load_strict(model, args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'test.py: error: {err}')
    runner.logger.info(f'Loaded checkpoint {args.checkpoint} (strictly)')
    metrics = runner.test()
    runner.logger.info('Test results: ' + ', '.join(
        f'{k}: {v:.2f}' if isinstance(v, float) else f'{k}: {v}'
        for k, v in metrics.items()))


if __name__ == '__main__':
    main()
