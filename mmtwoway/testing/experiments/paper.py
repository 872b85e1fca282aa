"""The paper's experiments: the grid of runs and the numbers it reports.

One place holds every cell of Tables 1-5 and 7 of the paper (Kobayashi,
CVPR 2023): its run name (= config basename = work-dir name), its config,
its place in the table and the paper's mAP@class / mAP@sample. The config
generator (``tools/misc/gen_configs.py``), the model zoo
(``docs/model_zoo.md``) and the ablation tool (``tools/ablation.py``) all
read it, so names and numbers cannot drift apart.

Cells the paper leaves blank are ``None`` (printed as '—'): Table 2 at
eps = 0.5, 1 and 2, Table 3b's softmax mAP@class for 'both', and all of
Table 5 (its M = 128 is the main setting, which carries Table 7's
numbers). ``tests/test_experiments/test_paper_numbers.py`` checks every
number here against a parse of the paper's text (``../shared/paper.md``).
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, NamedTuple, Optional, Tuple

#: Dataset key (= ``configs/_base_/datasets/<key>.py``) -> (name, classes).
DATASETS = OrderedDict([
    ('coco', ('MS-COCO 2014', 80)),
    ('vispr', ('VISPR', 68)),
    ('vaw', ('VAW', 620)),
    ('wider', ('WIDER Attribute', 14)),
    ('voc07', ('PASCAL VOC 2007', 20)),
    ('voc12', ('PASCAL VOC 2012', 20)),
])

#: Backbone key -> name (its Table 7 cells inherit ``WEIGHTS[key].base``).
BACKBONES = OrderedDict([
    ('r50', 'ResNet-50'),
    ('rx50', 'ResNeXt-50 (32x4d)'),
    ('d169', 'DenseNet-169'),
    ('regnety32gf', 'RegNetY-32GF'),
])


class Weights(NamedTuple):
    """The ImageNet weights a Table 7 cell of a backbone starts from.

    Attributes:
        base (str): the model base the cell inherits,
            ``configs/_base_/models/<base>.py``.
        url (str): the torchvision file (IMAGENET1K_V1) its
            ``from-torchvision://`` checkpoint loads.
        top1 (float): ImageNet top-1 torchvision publishes for it.
    """
    base: str
    url: str
    top1: float


_TV = 'https://download.pytorch.org/models/'

#: Backbone key -> the weights of its Table 7 cells and ablations:
#: torchvision's IMAGENET1K_V1, as the authors' script
#: (``torchvision.models.<arch>(pretrained=True)``). ``r50.py``, ``rx50.py``
#: and ``d169.py`` (mmpretrain's own ImageNet checkpoints) remain for other
#: uses; ``regnety32gf.py`` already is torchvision's.
WEIGHTS = OrderedDict([
    ('r50', Weights('r50_tv', _TV + 'resnet50-0676ba61.pth', 76.13)),
    ('rx50', Weights('rx50_tv', _TV + 'resnext50_32x4d-7cdf4587.pth',
                     77.62)),
    ('d169', Weights('d169_tv', _TV + 'densenet169-b2777c0a.pth', 75.60)),
    ('regnety32gf', Weights('regnety32gf',
                            _TV + 'regnet_y_32gf-4dee3f7a.pth', 80.88)),
])

#: Loss key (= ``configs/_base_/losses/<key>.py``) -> name in Table 7.
LOSSES = OrderedDict([
    ('softmax', 'Softmax (eq. 18)'),
    ('bce', 'class-frequency BCE [25]'),
    ('focal', 'Focal [18]'),
    ('asl', 'ASL [2]'),
    ('twoway', 'Two-way (ours)'),
])

# Table 7 as printed: dataset, loss, mAP@class for the four backbones in
# BACKBONES order, then mAP@sample for the same four.
_TABLE7 = """
coco   softmax  58.00 59.53 58.21 64.14 83.60 84.46 83.13 86.92
coco   bce      67.71 69.68 64.04 73.38 79.65 80.62 76.14 83.21
coco   focal    69.42 71.33 67.18 74.99 84.38 85.22 83.33 87.51
coco   asl      70.92 73.04 69.25 76.70 85.05 86.06 84.40 88.29
coco   twoway   74.11 75.44 73.51 79.57 86.66 87.11 86.62 89.54
vispr  softmax  36.61 36.97 28.64 36.79 85.23 85.43 83.75 85.90
vispr  bce      44.22 45.34 39.73 46.11 72.39 73.14 69.31 73.75
vispr  focal    46.89 47.76 40.78 48.75 84.35 84.26 82.91 85.29
vispr  asl      48.53 49.53 42.61 51.03 84.81 84.99 83.99 86.15
vispr  twoway   51.89 52.79 48.57 53.75 85.64 85.40 85.88 86.67
vaw    softmax  52.59 53.33 47.30 55.02 77.68 78.09 75.97 78.99
vaw    bce      51.21 51.31 44.53 52.25 72.43 72.29 66.50 72.43
vaw    focal    54.38 54.50 48.94 56.77 77.66 77.70 75.81 78.71
vaw    asl      55.39 55.72 48.17 57.88 78.05 78.32 75.91 79.03
vaw    twoway   56.42 57.00 54.28 59.33 78.81 78.95 78.36 80.07
wider  softmax  63.91 65.14 63.61 66.47 83.09 83.74 83.02 84.65
wider  bce      70.16 71.40 70.16 73.26 77.62 78.56 77.36 79.94
wider  focal    65.88 67.29 64.49 68.72 82.27 82.92 81.89 83.66
wider  asl      67.99 69.71 67.34 71.11 83.44 84.12 83.38 85.00
wider  twoway   72.28 72.77 73.03 74.92 85.43 85.43 85.87 86.97
voc07  softmax  83.49 84.31 82.53 86.63 93.23 93.66 92.61 94.99
voc07  bce      85.58 86.65 81.96 88.25 91.44 91.91 87.55 92.62
voc07  focal    85.59 86.27 78.33 87.87 93.04 93.24 89.83 94.56
voc07  asl      86.70 87.53 81.44 89.26 93.42 93.80 91.05 95.08
voc07  twoway   89.04 89.57 88.67 91.44 94.44 94.53 94.13 95.72
voc12  softmax  82.46 83.37 81.56 86.48 93.65 93.81 92.72 95.23
voc12  bce      85.56 86.56 81.94 88.27 92.60 93.01 89.63 94.05
voc12  focal    85.59 86.04 79.41 87.99 93.56 93.74 90.65 95.17
voc12  asl      86.56 87.09 81.83 89.06 94.01 94.19 92.18 95.46
voc12  twoway   88.12 88.72 87.95 91.01 94.38 94.73 94.28 96.04
"""

#: Two-way configs written by hand (by the dataset owners); the generator
#: never writes them, and the tests check they match the grid.
HAND_WRITTEN = frozenset(f'twoway_{d}_r50' for d in DATASETS)

Paper = Tuple[Optional[float], Optional[float]]


def _table7_numbers() -> Dict[Tuple[str, str, str], Paper]:
    numbers = {}
    for line in _TABLE7.strip().splitlines():
        dataset, loss, *values = line.split()
        values = [float(v) for v in values]
        for i, backbone in enumerate(BACKBONES):
            numbers[dataset, loss, backbone] = (values[i], values[i + 4])
    return numbers


TABLE7_NUMBERS = _table7_numbers()


def fmt(value: float) -> str:
    """A hyper-parameter as it appears in run names: 0.5, 1, 128."""
    return f'{value:g}'


@dataclass(frozen=True)
class Run:
    """One training run: a cell of a table.

    Attributes:
        name (str): config basename, also the work-dir name.
        row (str): row label in the table.
        col (str): column label in the table.
        paper (tuple): the paper's (mAP@class, mAP@sample); None where
            unknown.
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
        for run in self.runs:
            if run.row == row and run.col == col:
                return run
        raise KeyError(f'{self.key} has no run at ({row!r}, {col!r})')


def cell_run(loss: str, dataset: str, backbone: str, row: str = None,
             col: str = None) -> Run:
    """The Table 7 run of a loss, dataset and backbone."""
    name = f'{loss}_{dataset}_{backbone}'
    return Run(name=name, row=row or f'{dataset} / {loss}',
               col=col or backbone,
               paper=TABLE7_NUMBERS[dataset, loss, backbone],
               cell=(loss, dataset, backbone))


def table7() -> Table:
    """Table 7: five losses x six datasets x four backbones (120 runs)."""
    runs = tuple(
        cell_run(loss, dataset, backbone) for dataset in DATASETS
        for loss in LOSSES for backbone in BACKBONES)
    return Table('table7', 'Table 7: losses x datasets x backbones',
                 'dataset / loss \\ backbone',
                 tuple(f'{d} / {l}' for d in DATASETS for l in LOSSES),
                 tuple(BACKBONES), runs)


MAIN = 'twoway_coco_r50'  # the paper's main setting, shared by Tables 1-5


def _ablation(name, row, col, paper, base=MAIN, loss=None, replace=False):
    """An ablation run, or the Table 7 cell itself when nothing changes."""
    if loss is None:
        loss_key, dataset, backbone = base.split('_')
        return cell_run(loss_key, dataset, backbone, row, col)
    return Run(name=name, row=row, col=col, paper=paper, base=base,
               loss=loss, replace_loss=replace)


_T1_CLASS = {0: (71.03, 71.58, 71.88, 71.86), 0.5: (72.20, 72.30, 72.17,
             71.95), 1: (72.85, 72.93, 72.56, 72.20), 2: (73.42, 73.66,
             73.23, 72.53), 4: (73.56, 74.11, 73.90, 73.24)}
_T1_SAMPLE = {0: (85.01, 85.37, 85.55, 85.47), 0.5: (85.72, 85.81, 85.68,
              85.51), 1: (86.07, 86.14, 85.94, 85.66), 2: (86.27, 86.48,
              86.34, 85.85), 4: (86.26, 86.66, 86.66, 86.23)}
T1_TN = (0.5, 1, 2, 4)


def table1() -> Table:
    """Table 1: Tp in {->0, 0.5, 1, 2, 4} x Tn in {0.5, 1, 2, 4}."""
    runs = []
    for tp in _T1_CLASS:
        for j, tn in enumerate(T1_TN):
            paper = (_T1_CLASS[tp][j], _T1_SAMPLE[tp][j])
            changed = (tp, tn) != (4, 1)
            runs.append(
                _ablation(f'table1_tp{fmt(tp)}_tn{fmt(tn)}', fmt(tp), fmt(tn),
                          paper, loss=dict(tp=float(tp), tn=float(tn))
                          if changed else None))
    return Table('table1', 'Table 1: temperatures (Tp = 0 is the hard '
                 'minimum, "Tp -> 0")', 'Tp \\ Tn',
                 tuple(fmt(t) for t in _T1_CLASS),
                 tuple(fmt(t) for t in T1_TN), tuple(runs))


#: Table 2: the paper prints values only at eps = 4 and 8 (its text: the
#: bias "slightly improves performance by eps = 4").
_T2 = {0.5: (None, None), 1: (None, None), 2: (None, None),
       4: (73.44, 86.21), 8: (73.18, 86.02)}


def table2() -> Table:
    """Table 2: logit bias eps in {0.5, 1, 2, 4, 8} at Tp = Tn = 1."""
    runs = tuple(
        _ablation(f'table2_eps{fmt(eps)}', 'two-way, Tp = Tn = 1', fmt(eps),
                  _T2[eps], loss=dict(tp=1.0, tn=1.0, margin=float(eps)))
        for eps in _T2)
    return Table('table2', 'Table 2: logit bias eps (Tp = Tn = 1)',
                 'loss \\ eps',
                 ('two-way, Tp = Tn = 1', ),
                 tuple(fmt(e) for e in (0.5, 1, 2, 4, 8)), runs)


def table3() -> Table:
    """Table 3: ways (both / class / sample) of two-way and softmax."""
    ours = {'both': (74.11, 86.66), 'class': (73.06, 82.75),
            'sample': (67.18, 86.07)}
    softmax = {'both': (None, 84.33), 'class': (68.13, 69.15),
               'sample': (58.00, 83.60)}
    runs = []
    for ways in ('both', 'class', 'sample'):
        runs.append(
            _ablation(f'table3_twoway_{ways}', '(a) two-way', ways,
                      ours[ways], loss=None if ways == 'both' else
                      dict(ways=ways)))
    for ways in ('both', 'class', 'sample'):
        runs.append(
            _ablation(f'table3_softmax_{ways}', '(b) softmax', ways,
                      softmax[ways], base='softmax_coco_r50',
                      loss=None if ways == 'sample' else dict(ways=ways)))
    return Table('table3', 'Table 3: ways of computing the loss',
                 'loss \\ ways',
                 ('(a) two-way', '(b) softmax'), ('both', 'class', 'sample'),
                 tuple(runs))


def table4() -> Table:
    """Table 4: multi-similarity (eq. 20) and joint way (eq. 22), Tp 1/2/4."""
    multisim = {1: (70.36, 85.42), 2: (70.94, 85.75), 4: (71.27, 85.95)}
    joint = {1: (70.19, 84.82), 2: (71.71, 85.57), 4: (71.82, 85.64)}
    runs = []
    for tp in (1, 2, 4):
        runs.append(
            _ablation(f'table4_multisim_tp{tp}', '(a) multi-similarity',
                      fmt(tp), multisim[tp],
                      loss=dict(type='MultiSimilarityLoss', tp=float(tp),
                                tn=1.0, ways='sample'), replace=True))
    for tp in (1, 2, 4):
        runs.append(
            _ablation(f'table4_joint_tp{tp}', '(b) joint way', fmt(tp),
                      joint[tp], loss=dict(tp=float(tp), tn=1.0,
                                           ways='joint')))
    return Table('table4', 'Table 4: related losses', 'loss \\ Tp',
                 ('(a) multi-similarity', '(b) joint way'), ('1', '2', '4'),
                 tuple(runs))


T5_BUCKETS = (16, 32, 64, 128, 256, 512)


def table5() -> Table:
    """Table 5: bucket size M at a global batch of 512."""
    runs = tuple(
        _ablation(f'table5_m{m}', 'two-way, batch 512', str(m), (None, None),
                  loss=None if m == 128 else dict(bucket_size=m))
        for m in T5_BUCKETS)
    return Table('table5', 'Table 5: bucket size M (batch 512)',
                 'loss \\ M',
                 ('two-way, batch 512', ), tuple(str(m) for m in T5_BUCKETS),
                 runs)


TABLES = OrderedDict((t.key, t) for t in (table1(), table2(), table3(),
                                            table4(), table5(), table7()))
