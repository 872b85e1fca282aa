"""The paper's runs and numbers, read from ``configs/paper_results.yaml``.

Run names are config basenames and work-dir names; the configs, the model
zoo, ``tools/ablation.py`` and the tests all read them from here.
"""
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER_RESULTS = osp.join(ROOT, 'configs', 'paper_results.yaml')
MAIN = 'twoway_coco_r50'  # the paper's main setting, shared by Tables 1-5

Paper = Tuple[Optional[float], Optional[float]]


class Weights(NamedTuple):
    """The ImageNet weights a backbone's Table 7 cells start from.

    Attributes:
        base (str): the model base, ``configs/_base_/models/<base>.py``.
        url (str): the torchvision IMAGENET1K_V1 file it loads.
        top1 (float): ImageNet top-1 torchvision publishes for it.
    """
    base: str
    url: str
    top1: float


@dataclass(frozen=True)
class Run:
    """One training run: a cell of a table.

    Attributes:
        name (str): config basename, also the work-dir name.
        row (str): row label in the table.
        col (str): column label in the table.
        paper (tuple): the paper's (mAP@class, mAP@sample); None where
            blank.
        cell (tuple, optional): (loss, dataset, backbone) for a Table 7
            cell, which ``configs/<name>.py`` is.
        base (str, optional): for an ablation, the Table 7 cell it changes.
        loss (dict, optional): for an ablation, the loss settings merged
            into the base's (or replacing it when ``replace_loss``).
        replace_loss (bool): the ablation swaps the loss type.
    """
    name: str
    row: str
    col: str
    paper: Paper
    cell: Optional[Tuple[str, str, str]] = None
    base: Optional[str] = None
    loss: Optional[dict] = field(default=None, compare=False, hash=False)
    replace_loss: bool = False

    @property
    def config(self) -> str:
        """Config path from the repository root."""
        if self.cell is not None:
            return f'configs/{self.name}.py'
        return f'configs/ablations/{self.name}.py'

    @property
    def generated(self) -> bool:
        """Whether ``tools/misc/gen_configs.py`` writes its config."""
        return self.name not in HAND_WRITTEN


@dataclass(frozen=True)
class Table:
    """A table of the paper as rows x columns of runs."""
    key: str
    title: str
    row_header: str
    rows: Tuple[str, ...]
    cols: Tuple[str, ...]
    runs: Tuple[Run, ...]

    def run_at(self, row: str, col: str) -> Run:
        """The run at a row and column label.

        Raises:
            KeyError: No run sits there.
        """
        for run in self.runs:
            if run.row == row and run.col == col:
                return run
        raise KeyError(f'{self.key} has no run at ({row!r}, {col!r})')


def _load(path: str = PAPER_RESULTS) -> dict:
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


_DATA = _load()
#: Dataset key (= ``configs/_base_/datasets/<key>.py``) -> (name, classes).
DATASETS = OrderedDict((k, tuple(v)) for k, v in _DATA['datasets'].items())
#: Backbone key -> name.
BACKBONES = OrderedDict((k, v[0]) for k, v in _DATA['backbones'].items())
#: Backbone key -> the torchvision weights of its Table 7 cells.
WEIGHTS = OrderedDict(
    (k, Weights(*v[1:])) for k, v in _DATA['backbones'].items())
#: Loss key (= ``configs/_base_/losses/<key>.py``) -> name in Table 7.
LOSSES = OrderedDict(_DATA['losses'].items())
#: Two-way configs written by hand (by the dataset owners); the generator
#: never writes them, and the tests check they match the grid.
HAND_WRITTEN = frozenset(f'twoway_{d}_r50' for d in DATASETS)


def cell_run(name: str, row: Optional[str] = None,
             col: Optional[str] = None) -> Run:
    """The Table 7 run ``{loss}_{dataset}_{backbone}``, with its numbers."""
    loss, dataset, backbone = name.split('_')
    values = _DATA['table7'][dataset][loss]
    i = list(BACKBONES).index(backbone)
    return Run(name=name, row=row or f'{dataset} / {loss}',
               col=col or backbone, paper=(values[i], values[i + 4]),
               cell=(loss, dataset, backbone))


def _table(key: str, spec: dict) -> Table:
    runs = []
    for item in spec['runs']:
        if 'cell' in item:
            runs.append(cell_run(item['cell'], item['row'], item['col']))
        else:
            runs.append(
                Run(name=item['name'], row=item['row'], col=item['col'],
                    paper=tuple(item['paper']),
                    base=item.get('base', MAIN), loss=item['loss'],
                    replace_loss=item.get('replace', False)))
    return Table(key, spec['title'], spec['row_header'], tuple(spec['rows']),
                 tuple(spec['cols']), tuple(runs))


def _table7() -> Table:
    """Table 7: five losses x six datasets x four backbones (120 runs)."""
    runs = tuple(
        cell_run(f'{loss}_{dataset}_{backbone}') for dataset in DATASETS
        for loss in LOSSES for backbone in BACKBONES)
    return Table('table7', 'Table 7: losses x datasets x backbones',
                 'dataset / loss \\ backbone',
                 tuple(f'{d} / {l}' for d in DATASETS for l in LOSSES),
                 tuple(BACKBONES), runs)


TABLES: Dict[str, Table] = OrderedDict(
    [(k, _table(k, v)) for k, v in _DATA['tables'].items()] +
    [('table7', _table7())])


def all_runs() -> List[Run]:
    """Every distinct run of Tables 1-5 and 7 (a shared cell once)."""
    seen = {}
    for table in TABLES.values():
        for run in table.runs:
            seen.setdefault(run.name, run)
    return list(seen.values())
