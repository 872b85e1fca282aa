"""Read a run's final metrics from its work dir; print tables and the zoo.

A run's result is its latest validation record in mmengine's
``<work_dir>/<timestamp>/vis_data/<timestamp>.json`` (resumes add launches).
"""
import glob
import json
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional

from mmengine.config import Config

from tools.misc.paper import (BACKBONES, DATASETS, LOSSES, TABLES,
                              WEIGHTS, Run, Table)

CLASS_KEY = 'multi-label/mAP@class'
SAMPLE_KEY = 'multi-label/mAP@sample'
MISSING = '—'


class Result(NamedTuple):
    """The latest validation of a run."""
    map_class: float
    map_sample: float
    epoch: int
    final: bool  # the epoch is the last of the schedule


def _launches(work_dir: str) -> List[str]:
    """The timestamped launch folders of a work dir, oldest first."""
    found = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data')):
        stamp = osp.basename(osp.dirname(path))
        if osp.isfile(osp.join(path, f'{stamp}.json')):
            found.append(osp.dirname(path))
    return sorted(found)


def read_result(work_dir: str) -> Optional[Result]:
    """The latest validation record of the run in ``work_dir``, or None.

    Validation records carry the metrics and ``step`` (the epoch); the
    result is final when that epoch is the ``train_cfg.max_epochs`` of the
    ``vis_data/config.py`` the run saved.

    Args:
        work_dir (str): the run's ``--work-dir``.

    Returns:
        Result | None: None if the run has not validated yet.
    """
    latest, max_epochs = None, None
    for launch in _launches(work_dir):
        stamp = osp.basename(launch)
        with open(osp.join(launch, 'vis_data', f'{stamp}.json')) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f'{f.name}, line {number}: not a JSON '
                                     f'record ({err})') from err
                if CLASS_KEY in record and SAMPLE_KEY in record:
                    # Later launches (resumes) continue the same run.
                    if latest is None or record['step'] >= latest['step']:
                        latest = record
        config = osp.join(launch, 'vis_data', 'config.py')
        if osp.isfile(config):
            train_cfg = Config.fromfile(config).get('train_cfg') or {}
            max_epochs = train_cfg.get('max_epochs', max_epochs)
    if latest is None:
        return None
    epoch = int(latest['step'])
    return Result(latest[CLASS_KEY], latest[SAMPLE_KEY], epoch,
                  max_epochs is not None and epoch >= max_epochs)


def collect(runs: List[Run], work_root: str) -> Dict[str, Result]:
    """Results of the runs that have one, by run name (work dir name)."""
    results = {}
    for run in runs:
        result = read_result(osp.join(work_root, run.name))
        if result is not None:
            results[run.name] = result
    return results


def _measured(result: Optional[Result], index: int) -> str:
    if result is None:
        return MISSING
    value = f'{result[index]:.2f}'
    return value if result.final else f'{value}* (ep {result.epoch})'


def _paper(value: Optional[float]) -> str:
    return MISSING if value is None else f'{value:.2f}'


LEGEND = ('Each cell: measured (paper). — : not run yet, or blank in the '
          'paper. * : latest validation of a run that has '
          'not finished its schedule.')


def render_table(table: Table, results: Dict[str, Result]) -> str:
    """A table in its paper layout, mAP@class then mAP@sample (markdown)."""
    out = [f'### {table.title}', '', LEGEND, '']
    for index, metric in ((0, 'mAP@class'), (1, 'mAP@sample')):
        out += [f'**{metric}**', '',
                f'| {table.row_header} | ' + ' | '.join(table.cols) + ' |',
                '|---' * (len(table.cols) + 1) + '|']
        for row in table.rows:
            cells = []
            for col in table.cols:
                run = table.run_at(row, col)
                cells.append(f'{_measured(results.get(run.name), index)} '
                             f'({_paper(run.paper[index])})')
            out.append(f'| {row} | ' + ' | '.join(cells) + ' |')
        out.append('')
    return '\n'.join(out)


ZOO_HEADER = ('| Config | Loss | Backbone | Initial weights | '
              'Paper mAP@class | Paper mAP@sample | Measured mAP@class | '
              'Measured mAP@sample |')
_ZOO_COLUMNS = 8
_ZOO_ROW = re.compile(r'^(\| \[[^]]+\]\([^)]+\) \|.*\|) [^|]+ \| [^|]+ \|$')


def _weights(run: Run) -> str:
    """The run's initial weights: the torchvision file, linked."""
    backbone = run.cell[2] if run.cell is not None else run.base.split(
        '_')[-1]
    url = WEIGHTS[backbone].url
    return f'[{url.rsplit("/", 1)[-1][:-len(".pth")]}]({url})'


def _zoo_row(run: Run, label: str, results: Dict[str, Result]) -> str:
    result = results.get(run.name)
    return (f'| [{run.name}](../{run.config}) | {label} | {_weights(run)} | '
            f'{_paper(run.paper[0])} | {_paper(run.paper[1])} | '
            f'{_measured(result, 0)} | {_measured(result, 1)} |')


def _weights_table() -> List[str]:
    """Backbone -> base, torchvision file and its ImageNet top-1."""
    out = ['| Backbone | Model base | torchvision IMAGENET1K_V1 file | '
           'ImageNet top-1 |', '|---|---|---|---|']
    for backbone, weights in WEIGHTS.items():
        out.append(f'| {BACKBONES[backbone]} | '
                   f'`configs/_base_/models/{weights.base}.py` | '
                   f'[{weights.url.rsplit("/", 1)[-1]}]({weights.url}) | '
                   f'{weights.top1:.2f} |')
    return out


def render_zoo(results: Dict[str, Result]) -> str:
    """``docs/model_zoo.md``: every config with the paper's numbers."""
    out = [
        '# Model zoo', '',
        '<!-- Generated by tools/misc/gen_configs.py from '
        'configs/paper_results.yaml. Fill the measured columns with '
        '`python tools/misc/gen_configs.py --work-root work_dirs`. -->', '',
        'Every config of the paper\'s Tables 7 and 1-5 with the paper\'s '
        'numbers (percent) and a column for measured results. Train a '
        'config with `tools/dist_train.sh CONFIG 4` (4 GPUs x 128 images, '
        'the paper\'s batch of 512); `python tools/ablation.py list TABLE` '
        'prints the command of each run. See docs/protocol.md.', '',
        MISSING + ' : not run yet, or blank in the paper. '
        '* : latest validation of an unfinished run.', '',
        'Initial weights: every config below starts from torchvision\'s '
        'IMAGENET1K_V1 weights, as the authors\' script does '
        '(`pretrained=True`); the column names the file. The weights are '
        'renamed to mmpretrain\'s keys while loading '
        '(`from-torchvision://`). Offline, add `--cfg-options '
        'model.backbone.init_cfg.checkpoint=from-torchvision:///path/to/'
        'file.pth`. The classifier is a fresh linear layer with PyTorch\'s '
        'default init (`TorchDefault`).', ''
    ] + _weights_table() + [
        '', 'mmpretrain\'s own ImageNet checkpoints (ResNet-50 76.55, '
        'ResNeXt-50 77.90, DenseNet-169 76.08 top-1) remain an option: '
        'inherit `configs/_base_/models/{r50,rx50,d169}.py` instead of the '
        '`_tv` base, or add `--cfg-options model.backbone.init_cfg.'
        'checkpoint=<mmpretrain URL or file>` (the URLs are in those '
        'bases). See docs/backbones_and_transfer.md.', ''
    ]
    seven = TABLES['table7']
    for dataset, (name, classes) in DATASETS.items():
        out += [f'## Table 7 — {name} ({classes} classes)', '', ZOO_HEADER,
                '|---' * _ZOO_COLUMNS + '|']
        for run in seven.runs:
            loss, cell_dataset, backbone = run.cell
            if cell_dataset == dataset:
                out.append(
                    _zoo_row(run, f'{LOSSES[loss]} | {BACKBONES[backbone]}',
                             results))
        out.append('')
    for key, table in TABLES.items():
        if key == 'table7':
            continue
        out += [f'## {table.title} (MS-COCO, ResNet-50)', '',
                ZOO_HEADER.replace('| Loss | Backbone |',
                                   f'| {table.row_header} | |'),
                '|---' * _ZOO_COLUMNS + '|']
        for run in table.runs:
            out.append(_zoo_row(run, f'{run.row} | {run.col}', results))
        out.append('')
    return '\n'.join(out)


def blank_measured(text: str) -> str:
    """``render_zoo`` text with every measured cell reset to '—'.

    Lets a check compare a committed zoo, whose measured columns someone
    filled in, with what the generator writes from the paper alone.
    """
    lines = []
    for line in text.splitlines():
        match = _ZOO_ROW.match(line)
        lines.append(f'{match.group(1)} {MISSING} | {MISSING} |'
                     if match else line)
    return '\n'.join(lines) + ('\n' if text.endswith('\n') else '')
