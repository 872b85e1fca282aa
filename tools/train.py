"""Train a model from an mmtwoway (or any MMPretrain) config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] ...
    tools/dist_train.sh CONFIG GPUS [...]   # the same, one process per GPU
"""
import argparse
import os
import os.path as osp
import sys

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmtwoway.engine.hooks import (NonFiniteLossError, TrainSettingsError,
                                   check_runner, check_work_dir)
from mmtwoway.utils.checkpoint import (CheckpointError, checkpoints_of,
                                       resume_hint, unreadable_checkpoint)
from mmtwoway.utils.runtime import adapt_to_machine, use_bf16


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or without a value from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='fp16 mixed precision with dynamic loss scaling (CUDA only; '
        'the paper configs already use it)')
    parser.add_argument(
        '--bf16',
        action='store_true',
        help='bfloat16 autocast without a loss scaler (GPUs with bf16: '
        'Ampere and newer); no scaler means no host sync in the step')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr linearly with the global batch size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_epochs=1')
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


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Fold the command-line options into the config."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.bf16:
        use_bf16(cfg)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def fail(runner: Runner, cfg: Config, err: CheckpointError) -> None:
    """Exit naming the unreadable checkpoint; a failed resume also names
    the checkpoint that would work.

    Args:
        runner (Runner): The run, for its log.
        cfg (Config): The run's config.
        err (CheckpointError): What is wrong with which file.
    """
    message = f'{err}. {resume_hint(err.path)}' if cfg.resume else err
    runner.logger.error(message)
    sys.exit(f'train.py: error: {message}')


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    adapt_to_machine(cfg)
    try:
        check_work_dir(cfg.work_dir, cfg.resume)
    except TrainSettingsError as err:
        sys.exit(f'train.py: error: {err}')
    runner = Runner.from_cfg(cfg)
    try:
        # Datasets, classes and batch settings, before mmengine builds the
        # schedulers (where an epoch without an iteration fails its way).
        check_runner(runner)
    except (FileNotFoundError, ValueError) as err:
        runner.logger.error(str(err))
        sys.exit(f'train.py: error: {err}')
    try:
        runner.train()
    except (NonFiniteLossError, TrainSettingsError) as err:
        runner.logger.error(str(err))
        sys.exit(f'train.py: error: {err}')
    except (RuntimeError, EOFError, OSError, KeyError, ValueError):
        # torch's message for an unreadable checkpoint does not name it.
        unreadable = unreadable_checkpoint(checkpoints_of(cfg))
        if unreadable is None:
            raise
        fail(runner, cfg, unreadable)


if __name__ == '__main__':
    main()
