"""List, launch and collect the runs of one of the paper's tables.

    python tools/ablation.py list TABLE [--gpus 4] [--work-root work_dirs]
    python tools/ablation.py launch TABLE [--gpus 4] [--dry-run] [--force]
    python tools/ablation.py collect TABLE [--work-root work_dirs]

TABLE is table1 ... table5 (the ablations on MS-COCO / ResNet-50) or table7
(the 120 cells). Every run is ``tools/dist_train.sh CONFIG GPUS --work-dir
WORK_ROOT/NAME``: the paper's global batch of 512 in buckets of 128 on any
number of GPUs dividing 512 (``--gpus 8`` runs 8 x 64, with each bucket
spanning two GPUs; ``--gpus 1`` runs 1 x 512 in four buckets). ``launch``
runs them one after the other, resuming a run that has a checkpoint and
skipping finished ones; ``--dry-run`` only prints the commands (e.g. to
submit them to a cluster). ``collect`` reads each run's mmengine logs and
prints the table in the paper's layout, measured beside the paper's numbers,
'—' where a run has no result yet.
"""
import argparse
import os.path as osp
import shlex
import subprocess
import sys
from typing import List, Optional

# Run as a script: put the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
from tools.misc.paper import TABLES, Run  # noqa: E402
from tools.misc.zoo import collect, read_result, render_table  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
GLOBAL_BATCH = 512
CONFIG_BATCH = 128  # images per GPU in every dataset base (4 x 128 = 512)


def train_command(run: Run, gpus: int, work_root: str) -> List[str]:
    """The command that trains ``run`` on ``gpus`` GPUs of one machine.

    Args:
        run (Run): the run.
        gpus (int): number of GPUs (processes); must divide 512.
        work_root (str): folder of the work dirs, one per run name.

    Returns:
        list[str]: the command, relative to the repository root.
    """
    if gpus < 1 or GLOBAL_BATCH % gpus:
        raise ValueError(f'--gpus {gpus}: the paper\'s batch of '
                         f'{GLOBAL_BATCH} must split evenly over the GPUs '
                         '(1, 2, 4, 8, 16, 32, ...).')
    work_dir = osp.join(work_root, run.name)
    cmd = [
        'tools/dist_train.sh', run.config,
        str(gpus), '--work-dir', work_dir
    ]
    per_gpu = GLOBAL_BATCH // gpus
    if per_gpu != CONFIG_BATCH:
        cmd += ['--cfg-options', f'train_dataloader.batch_size={per_gpu}']
    if osp.isfile(osp.join(ROOT, work_dir, 'last_checkpoint')):
        cmd.insert(4, '--resume')
    return cmd


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='List, launch or collect the runs of a paper table.')
    parser.add_argument('action', choices=['list', 'launch', 'collect'])
    parser.add_argument('table', choices=list(TABLES))
    parser.add_argument(
        '--gpus', type=int, default=4, help='GPUs per run (default 4)')
    parser.add_argument(
        '--work-root',
        default='work_dirs',
        help='folder of the runs\' work dirs (default work_dirs)')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='launch: print the commands instead of running them')
    parser.add_argument(
        '--force',
        action='store_true',
        help='launch: also rerun runs that have finished')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    table = TABLES[args.table]
    runs = list(table.runs)
    if args.action == 'collect':
        results = collect(runs, osp.join(ROOT, args.work_root))
        print(render_table(table, results))
        print(f'{len(results)} of {len(runs)} runs have results under '
              f'{args.work_root}.')
        return
    if args.action == 'list':
        print(f'# {table.title}: {len(runs)} runs')
        for run in runs:
            print(f'# {run.name}: {table.row_header} = {run.row} / {run.col}'
                  f' ({run.config})')
            print(shlex.join(train_command(run, args.gpus, args.work_root)))
        return
    for run in runs:
        cmd = train_command(run, args.gpus, args.work_root)
        result = read_result(osp.join(ROOT, args.work_root, run.name))
        if result is not None and result.final and not args.force:
            print(f'# {run.name}: finished, skipped (--force reruns it)')
            continue
        print(shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        done = subprocess.run(cmd, cwd=ROOT)
        if done.returncode:
            sys.exit(f'{run.name} failed with exit code {done.returncode}; '
                     'fix it and launch again (finished runs are skipped).')


if __name__ == '__main__':
    main()
