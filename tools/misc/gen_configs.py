"""Write the generated configs and docs/model_zoo.md from the paper's grid.

    python tools/misc/gen_configs.py                 # write them
    python tools/misc/gen_configs.py --check         # exit 1 if stale
    python tools/misc/gen_configs.py --work-root work_dirs   # + measured

The grid and the paper's numbers live in ``mmtwoway/testing/experiments/paper.py``:
114 Table 7 cells ``configs/{loss}_{dataset}_{backbone}.py`` (the six
``twoway_*_r50.py`` are hand-written and left alone), 39 ablation configs
``configs/ablations/*.py`` (Tables 1-5; their other cells are Table 7
cells) and the model zoo. ``--check`` ignores the zoo's measured columns.
"""
import argparse
import os
import os.path as osp
import sys

from mmtwoway.testing.experiments import all_runs, generated_configs
from mmtwoway.testing.experiments.results import blank_measured, collect, render_zoo

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ZOO = 'docs/model_zoo.md'


def expected_files(work_root=None) -> dict:
    """Path from the repository root -> the text the generator writes."""
    files = generated_configs()
    results = collect(all_runs(), work_root) if work_root else {}
    files[ZOO] = render_zoo(results) + '\n'
    return files


def stale_files(root: str = ROOT) -> list:
    """Generated files that are missing or differ from the generator's."""
    stale = []
    for path, text in expected_files().items():
        full = osp.join(root, path)
        if not osp.isfile(full):
            stale.append(f'{path} (missing)')
            continue
        with open(full, encoding='utf-8') as f:
            current = f.read()
        if path == ZOO:
            current = blank_measured(current)
        if current != text:
            stale.append(f'{path} (differs)')
    known = set(generated_configs())
    ablations = osp.join(root, 'configs', 'ablations')
    for name in sorted(os.listdir(ablations)) if osp.isdir(ablations) else []:
        path = f'configs/ablations/{name}'
        if name.endswith('.py') and path not in known:
            stale.append(f'{path} (not in the grid: delete it)')
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='only report generated files that are stale')
    parser.add_argument('--work-root', help='fill the model zoo\'s measured '
                        'columns from the runs under this folder')
    args = parser.parse_args()
    if args.check:
        stale = stale_files()
        for line in stale:
            print(f'stale: {line}')
        if stale:
            print('Run python tools/misc/gen_configs.py to regenerate.')
            sys.exit(1)
        print('generated configs and model zoo are up to date')
        return
    files = expected_files(args.work_root)
    for path, text in files.items():
        full = osp.join(ROOT, path)
        os.makedirs(osp.dirname(full), exist_ok=True)
        with open(full, 'w', encoding='utf-8') as f:
            f.write(text)
    print(f'wrote {len(files)} files under {ROOT}')


if __name__ == '__main__':
    main()
