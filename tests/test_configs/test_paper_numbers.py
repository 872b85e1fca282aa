"""Every number in ``configs/paper_results.yaml`` against the paper.

The paper's text (``../shared/paper.md`` beside the repository) holds each
table as tab-separated rows under its caption. The parse below reads them
in the paper's layout, and every run of Tables 1-5 and 7 must carry exactly
the printed pair — ``None`` only where the paper's cell is blank — so that
no number in the configs, the model zoo or ``tools/ablation.py collect``
can drift from the paper.
"""
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import pytest

from tools.misc.paper import BACKBONES, DATASETS, LOSSES, TABLES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = osp.normpath(osp.join(ROOT, '..', 'shared', 'paper.md'))

pytestmark = pytest.mark.skipif(
    not osp.isfile(PAPER),
    reason=f'the paper text {PAPER} is not present (it lives beside the '
    'repository, in ../shared/paper.md, on the team machine)')

Pair = Tuple[Optional[float], Optional[float]]
NUMBER = re.compile(r'^\d+\.\d\d$')


@pytest.fixture(scope='module')
def paper() -> str:
    with open(PAPER, encoding='utf-8') as f:
        return f.read()


def table_rows(text: str, number: int) -> List[List[str]]:
    """The tab-separated rows after the caption ``Table <number>.``."""
    lines = text.splitlines()
    start = [i for i, line in enumerate(lines)
             if line.startswith(f'Table {number}.')]
    assert len(start) == 1, f'caption of Table {number} not found once'
    rows = []
    for line in lines[start[0] + 1:]:
        if '\t' in line:
            rows.append([cell.strip() for cell in line.split('\t')])
        elif rows and line.strip():
            break  # the prose after the table
    assert rows, f'Table {number} has no tab-separated rows'
    return rows


def value(cell: str) -> Optional[float]:
    """A printed number, or None for a blank cell."""
    if not cell:
        return None
    assert NUMBER.match(cell), f'not a table number: {cell!r}'
    return float(cell)


def numbers(row: List[str]) -> List[float]:
    """The numbers of a row (its labels dropped)."""
    return [float(c) for c in row if NUMBER.match(c)]


def check(table_key: str, expected: Dict[Tuple[str, str], Pair]) -> None:
    """Every run of the table carries the parsed pair, and only those.

    A blank ablation cell that is the main setting itself (Table 5's
    M = 128 is ``twoway_coco_r50``) carries that run's Table 7 numbers,
    which ``test_table7_every_cell`` checks.
    """
    table = TABLES[table_key]
    runs = {(run.row, run.col): run for run in table.runs}
    assert set(runs) == set(expected), table_key
    for cell, pair in expected.items():
        run = runs[cell]
        if pair == (None, None) and run.cell is not None:
            assert run.paper == TABLES['table7'].run_at(
                f'{run.cell[1]} / {run.cell[0]}', run.cell[2]).paper
            continue
        assert run.paper == pair, (table_key, cell, run.paper, pair)


def test_table1_temperatures(paper):
    rows = table_rows(paper, 1)
    header = [c for c in rows[1] if c]
    assert header[-4:] == ['0.5', '1', '2', '4']  # Tn, twice
    body = [numbers(r) for r in rows[2:]]
    assert [len(r) for r in body] == [8] * 5
    # Tp rows as printed: -> 0, 0.5 (typeset as '0.' + '5'), 1, 2, 4.
    assert [r[1] for r in rows[2:]] == ['0', '5', '1', '2', '4']
    tps = ['0', '0.5', '1', '2', '4']
    expected = {(tp, tn): (r[j], r[j + 4])
                for tp, r in zip(tps, body)
                for j, tn in enumerate(header[-4:])}
    check('table1', expected)


def test_table2_logit_bias(paper):
    header, values = table_rows(paper, 2)
    eps = header[1:]
    assert eps == ['0.5', '1', '2', '4', '8']
    cells = values[1:] + [''] * (len(eps) + 1 - len(values))
    expected = {}
    for e, cell in zip(eps, cells):
        pair = cell.split()
        expected['two-way, Tp = Tn = 1', e] = (
            (value(pair[0]), value(pair[1])) if pair else (None, None))
    # The two printed pairs (eps = 4 and 8) and three blanks.
    assert sum(p != (None, None) for p in expected.values()) == 2
    check('table2', expected)


def test_table3_ways(paper):
    rows = table_rows(paper, 3)
    (ways, ) = [r for r in rows if r[0] == 'way']
    assert ways[1:7] == ['both', 'class', 'sample'] * 2
    (cls, ) = [r for r in rows if r[0] == 'mAP@class']
    (smp, ) = [r for r in rows if r[0] == 'mAP@sample']
    expected = {}
    for j, (row, way) in enumerate(
            [(r, w) for r in ('(a) two-way', '(b) softmax')
             for w in ('both', 'class', 'sample')]):
        expected[row, way] = (value(cls[1 + j]), value(smp[1 + j]))
    assert expected['(b) softmax', 'class'] == (68.13, 69.15)
    assert expected['(b) softmax', 'both'] == (None, 84.33)
    check('table3', expected)


def test_table4_related_losses(paper):
    rows = table_rows(paper, 4)
    body = [numbers(r) for r in rows if len(numbers(r)) == 6]
    # The first value row is labelled 'mAP@class mAP@sample' in our copy
    # but holds mAP@class (the second holds mAP@sample).
    assert len(body) == 2
    cls, smp = body
    expected = {}
    for j, (row, tp) in enumerate(
            [(r, t) for r in ('(a) multi-similarity', '(b) joint way')
             for t in ('1', '2', '4')]):
        expected[row, tp] = (cls[j], smp[j])
    check('table4', expected)


def test_table5_is_blank_in_the_paper(paper):
    header, values = table_rows(paper, 5)
    assert header[1:] == ['16', '32', '64', '128', '256', '512']
    assert not numbers(values)
    check('table5', {('two-way, batch 512', m): (None, None)
                     for m in header[1:]})


#: Table 7's row labels in the paper -> our dataset and loss keys.
T7_DATASETS = {'MSCOCO [19]': 'coco', 'VISPR [23]': 'vispr',
               'VAW [25]': 'vaw', 'WIDER [17]': 'wider',
               'VOC2007 [9]': 'voc07', 'VOC2012 [9]': 'voc12'}
T7_LOSSES = {'Softmax': 'softmax', 'BCE': 'bce', 'Focal [18]': 'focal',
             'ASL [2]': 'asl', 'Ours': 'twoway'}


def test_table7_every_cell(paper):
    rows = table_rows(paper, 7)
    header = rows[1]
    assert header[2:6] == ['ResNet50', 'ResNeXt50', 'DenseNet169',
                           'RegNetY32gf']
    expected, dataset = {}, None
    for row in rows[2:]:
        dataset = T7_DATASETS.get(row[0], dataset) if row[0] else dataset
        loss = T7_LOSSES[row[1]]
        values = numbers(row)
        assert len(values) == 8, row
        for i, backbone in enumerate(BACKBONES):
            expected[f'{dataset} / {loss}', backbone] = (values[i],
                                                         values[i + 4])
    assert len(expected) == len(DATASETS) * len(LOSSES) * len(BACKBONES)
    check('table7', expected)


def test_table8_numbers_in_the_transfer_configs(paper):
    """Table 8 lives in the comments of the ImageNet and probe configs."""
    rows = table_rows(paper, 8)
    columns = rows[0][1:]
    printed = {r[0]: [float(v) for v in r[1:]] for r in rows[1:]}
    assert list(printed) == ['ASL [2]', 'Softmax', 'Ours']
    imagenet = {'asl': printed['ASL [2]'][0],
                'softmax': printed['Softmax'][0],
                'twoway': printed['Ours'][0]}
    for loss, top1 in imagenet.items():
        with open(osp.join(ROOT, 'configs', 'imagenet',
                           f'{loss}_in1k_r50.py')) as f:
            assert f'paper: {top1:.2f} top-1' in f.read(), loss
    probes = {'Aircraft [21]': 'aircraft', 'Caltech101 [10]': 'caltech101',
              'Car [16]': 'cars', 'CUB [34]': 'cub', 'DTD [5]': 'dtd',
              'Flower [22]': 'flowers102', 'Food101 [3]': 'food101',
              'Pets [24]': 'pets', 'SUN [37]': 'sun397'}
    assert columns[1:] == list(probes)
    for j, (column, key) in enumerate(probes.items(), start=1):
        line = ('# Paper (ASL / softmax / ours): ' + ' / '.join(
            f'{printed[r][j]:.2f}' for r in ('ASL [2]', 'Softmax', 'Ours'))
            + '.')
        with open(osp.join(ROOT, 'configs', 'linear_probe',
                           f'linear_r50_{key}.py')) as f:
            assert line in f.read(), (column, line)
