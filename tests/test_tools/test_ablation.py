"""tools/ablation.py: the grids of Tables 1-5, the commands, and collecting
results from work dirs in mmengine's log layout."""
import contextlib
import io
import json
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config

from tools.misc.paper import TABLES
from tools import ablation

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


ABLATION = ablation


def tool(*args):
    """Run the tool's main() in this process; its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ABLATION.main(list(args))
    return out.getvalue()


def head_loss(run):
    return Config.fromfile(osp.join(ROOT, run.config)).model.head.loss


def test_table1_grid_temperatures():
    table = TABLES['table1']
    assert table.rows == ('0', '0.5', '1', '2', '4')  # Tp, 0 = "-> 0"
    assert table.cols == ('0.5', '1', '2', '4')  # Tn
    assert len(table.runs) == 20
    for run in table.runs:
        loss = head_loss(run)
        assert loss.type == 'TwoWayLoss'
        assert loss.get('ways', 'both') == 'both'
        assert (loss.tp, loss.tn) == (float(run.row), float(run.col))
        assert loss.bucket_size == 128
    # Tp = 4, Tn = 1 is the paper's setting: the Table 7 cell, not a copy.
    assert table.run_at('4', '1').config == 'configs/twoway_coco_r50.py'
    assert table.run_at('1', '1').paper == (72.93, 86.14)  # underlined
    assert table.run_at('0', '4').paper == (71.86, 85.47)


def test_tables_2_to_5_grids():
    t2 = TABLES['table2']
    assert t2.cols == ('0.5', '1', '2', '4', '8')
    for run in t2.runs:
        loss = head_loss(run)
        assert (loss.tp, loss.tn, loss.margin) == (1.0, 1.0, float(run.col))
    t3 = TABLES['table3']
    assert t3.cols == ('both', 'class', 'sample')
    for run in t3.runs:
        loss = head_loss(run)
        kind = 'TwoWayLoss' if run.row.endswith('two-way') else \
            'NormalizedSoftmaxLoss'
        assert loss.type == kind
        assert loss.get('ways', 'both') == run.col
    t4 = TABLES['table4']
    for run in t4.runs:
        loss = head_loss(run)
        assert loss.tp == float(run.col) and loss.tn == 1.0
        if 'multi' in run.row:
            assert loss.type == 'MultiSimilarityLoss'
            assert 'bucket_size' not in loss  # _delete_ dropped the base's
        else:
            assert loss.type == 'TwoWayLoss' and loss.ways == 'joint'
    t5 = TABLES['table5']
    assert [head_loss(r).bucket_size for r in t5.runs] == [
        16, 32, 64, 128, 256, 512
    ]
    # Every ablation trains MS-COCO with ResNet-50 at 4 x 128 = 512.
    cfg = Config.fromfile(osp.join(ROOT, t5.runs[0].config))
    assert cfg.model.backbone.depth == 50
    assert cfg.train_dataloader.dataset.type == 'CocoMultiLabel'
    assert cfg.train_dataloader.batch_size == 128


def test_list_and_dry_run_commands(tmp_path):
    out = tool('list', 'table1')
    commands = [l for l in out.splitlines() if not l.startswith('#')]
    assert len(commands) == 20
    assert ('tools/dist_train.sh configs/ablations/table1_tp0_tn0.5.py 4 '
            '--work-dir work_dirs/table1_tp0_tn0.5') in commands
    assert ('tools/dist_train.sh configs/twoway_coco_r50.py 4 --work-dir '
            'work_dirs/twoway_coco_r50') in commands
    # 8 GPUs keep the batch of 512: 64 each (buckets span two GPUs).
    out = tool('launch', 'table5', '--gpus', '8', '--dry-run',
               '--work-root', str(tmp_path))
    lines = out.strip().splitlines()
    assert len(lines) == 6
    assert all(l.endswith('train_dataloader.batch_size=64') for l in lines)
    with pytest.raises(ValueError, match='split evenly'):
        tool('list', 'table2', '--gpus', '3')


def write_run(work_root, name, stamp, records, max_epochs=40):
    """A work dir as mmengine's LoggerHook and LocalVisBackend leave it."""
    vis = osp.join(work_root, name, stamp, 'vis_data')
    os.makedirs(vis)
    with open(osp.join(vis, f'{stamp}.json'), 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')
    with open(osp.join(vis, 'config.py'), 'w') as f:
        f.write(f'train_cfg = dict(by_epoch=True, max_epochs={max_epochs}, '
                'val_interval=5)\n')
    with open(osp.join(work_root, name, stamp, f'{stamp}.log'), 'w') as f:
        f.write('mmengine - INFO - Epoch(train) [1][ 5/18] ...\n')


def train(epoch, it):
    return {'lr': 0.001, 'data_time': 0.02, 'loss': 1.5, 'time': 0.3,
            'epoch': epoch, 'iter': it, 'step': it}


def val(epoch, cls, smp):
    return {'multi-label/mAP@class': cls, 'multi-label/mAP@sample': smp,
            'data_time': 0.01, 'time': 0.07, 'step': epoch}


def test_collect_fills_the_table_layout(tmp_path):
    root = str(tmp_path)
    # Finished run.
    write_run(root, 'table4_joint_tp2', '20240101_000000',
              [train(1, 5), val(5, 60.0, 80.0), train(40, 900),
               val(40, 71.234, 85.5)])
    # Interrupted then resumed: the later launch carries the final epoch.
    write_run(root, 'table4_multisim_tp1', '20240101_000000',
              [train(1, 5), val(5, 50.0, 70.0), val(10, 55.0, 75.0)])
    write_run(root, 'table4_multisim_tp1', '20240102_000000',
              [val(15, 60.0, 80.0), val(40, 70.11, 85.22)])
    # Still running.
    write_run(root, 'table4_multisim_tp4', '20240101_000000',
              [train(1, 5), val(5, 61.5, 81.25)])
    # Started, not validated yet: no result.
    write_run(root, 'table4_joint_tp4', '20240101_000000', [train(1, 5)])
    out = tool('collect', 'table4', '--work-root', root)
    rows = {}
    for line in out.splitlines():
        if line.startswith('| ('):
            cells = [c.strip() for c in line.strip('|').split('|')]
            rows.setdefault(cells[0], []).append(cells[1:])
    (ms_class, ms_sample), (joint_class, joint_sample) = \
        rows['(a) multi-similarity'], rows['(b) joint way']
    assert ms_class == ['70.11 (70.36)', '— (70.94)', '61.50* (ep 5) (71.27)']
    assert ms_sample == ['85.22 (85.42)', '— (85.75)', '81.25* (ep 5) (85.95)']
    assert joint_class == ['— (70.19)', '71.23 (71.71)', '— (71.82)']
    assert joint_sample == ['— (84.82)', '85.50 (85.57)', '— (85.64)']
    assert '3 of 6 runs have results' in out
    # launch skips the finished runs and resumes nothing it cannot.
    out = tool('launch', 'table4', '--dry-run', '--work-root', root)
    assert '# table4_joint_tp2: finished, skipped' in out
    assert '# table4_multisim_tp1: finished, skipped' in out
    assert len(re.findall(r'^tools/dist_train.sh', out, re.M)) == 4


def test_collect_reports_a_corrupt_log(tmp_path):
    write_run(str(tmp_path), 'table5_m16', '20240101_000000', [])
    path = osp.join(str(tmp_path), 'table5_m16', '20240101_000000',
                    'vis_data', '20240101_000000.json')
    with open(path, 'w') as f:
        f.write('{"step": 1, "multi-label/mAP@cl\n')
    with pytest.raises(ValueError, match='20240101_000000.json, line 1'):
        tool('collect', 'table5', '--work-root', str(tmp_path))


@pytest.mark.parametrize('key', ['table1', 'table2', 'table3', 'table5'])
def test_every_cell_of_the_layout_has_a_run(key):
    table = TABLES[key]
    names = {table.run_at(r, c).name for r in table.rows for c in table.cols}
    assert len(names) == len(table.rows) * len(table.cols) == len(table.runs)


def test_model_zoo_measured_columns():
    """gen_configs --work-root fills the zoo; --check ignores those cells."""
    from tools.misc.zoo import (Result, blank_measured,
                                              render_zoo)
    empty = render_zoo({})
    filled = render_zoo({
        'bce_vaw_rx50': Result(51.0, 72.5, 40, True),
        'table5_m16': Result(70.0, 86.0, 12, False)
    })
    assert '| 51.31 | 72.29 | 51.00 | 72.50 |' in filled
    assert '70.00* (ep 12)' in filled
    assert filled != empty and blank_measured(filled) == empty
    # Every config of the grid appears (cells shared by tables again in
    # each table's section).
    for table in TABLES.values():
        for run in table.runs:
            assert f'[{run.name}](../{run.config})' in empty
