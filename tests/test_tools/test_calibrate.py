"""tools/calibrate.py on a real (tiny) training run, and its file used by
the head inside a real mmengine Runner with MultiLabelF1 beside the mAPs."""
import json
import math
import os.path as osp

import pytest
import torch
from demo_run import CLASSES, calibration, demo_run, run_main
from mmengine.config import Config
from mmengine.runner import Runner

from mmtwoway.apis import load_model, predict_images
from mmtwoway.datasets import CocoMultiLabel
from mmtwoway.evaluation import (calibrate_delta, calibrate_thresholds,
                                 label_set_scores, mean_ap)
from mmtwoway.evaluation.decision import load_calibration, threshold_labels
from mmtwoway.utils.runtime import adapt_to_machine

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.fixture(scope='module')
def val_scores(run):
    """Scores of the val images, by an independent path (the inferencer),
    and their targets from the annotation file."""
    model = load_model(run.config, run.checkpoint, 'cpu')
    preds = predict_images(model, run.val_images())
    dataset = CocoMultiLabel(
        ann_file=run.val_json, data_prefix='', check_images=False)
    targets = torch.zeros(len(dataset), len(CLASSES), dtype=torch.long)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        assert osp.basename(info['img_path']) == osp.basename(
            preds[i]['image'])
        targets[i, info['gt_label']] = 1
    return torch.tensor([p['scores'] for p in preds]), targets


def test_calibration_file_holds_the_optimal_rules(run, val_scores):
    path, printed = calibration(run)
    data = load_calibration(path)
    scores, targets = val_scores
    assert data['classes'] == list(CLASSES)
    assert data['rule'] == 'thresholds'
    fitted = calibrate_thresholds(scores, targets)
    thresholds = [math.inf if t is None else t for t in data['thresholds']]
    assert thresholds == pytest.approx(fitted.thresholds.tolist(), abs=1e-5)
    delta, of1 = calibrate_delta(scores, targets)
    assert data['delta'] == pytest.approx(delta, abs=1e-5)
    val = data['validation']
    assert val['num_samples'] == len(targets) == 32
    assert val['split'] == 'val' and val['checkpoint'] == run.checkpoint
    assert val['mAP@class'] == pytest.approx(
        mean_ap(scores, targets, 'class').item(), abs=1e-3)
    measured = label_set_scores(threshold_labels(scores, thresholds),
                                targets)
    assert val['rules']['thresholds'] == pytest.approx(
        measured.overall, abs=1e-3)
    assert val['rules']['relative']['OF1'] == pytest.approx(
        100 * of1, abs=1e-3)
    assert val['per_class']['num_positives'] == targets.sum(0).tolist()
    # the per-class F1s stored are the optima of the thresholds
    f1 = torch.tensor(
        [math.nan if v is None else v for v in val['per_class']['f1']])
    assert torch.allclose(f1, fitted.f1.float(), atol=1e-5, equal_nan=True)
    # the printed table, and how to use the file
    assert 'thresholds' in printed and 'relative' in printed
    assert f'model.head.calibration={path}' in printed


def test_calibrated_head_in_a_runner(run, tmp_path):
    """model.head.calibration + MultiLabelF1 beside MultiLabelMAP in the
    test loop reproduce the numbers calibrate.py measured (same set)."""
    path, _ = calibration(run)
    with open(path) as f:
        measured = json.load(f)['validation']
    cfg = Config.fromfile(run.config)
    cfg.model.head.calibration = path
    cfg.load_from = run.checkpoint
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = 'calibrated_head_in_a_runner'
    cfg.test_evaluator = [
        dict(type='MultiLabelMAP'),
        dict(type='MultiLabelF1')
    ]
    adapt_to_machine(cfg)
    metrics = Runner.from_cfg(cfg).test()
    assert metrics['multi-label/mAP@class'] == pytest.approx(
        measured['mAP@class'], abs=1e-3)
    for key, value in measured['rules']['thresholds'].items():
        assert metrics[f'multi-label/{key}'] == pytest.approx(
            value, abs=1e-3), key
    log = open(next(tmp_path.rglob('*.log'))).read()
    assert f'label sets decided by per-class thresholds from {path}' in log


def test_calibrate_errors(run, tmp_path):
    with pytest.raises(ValueError, match='num_classes is 12'):
        run_main('calibrate', [
            run.config, run.checkpoint, '--out', tmp_path / 'x.json',
            '--cfg-options', 'model.head.num_classes=12'
        ])
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        run_main('calibrate', [run.config, tmp_path / 'nothing.pth'])
    # a validation set whose classes are not the checkpoint's
    with open(run.val_json) as f:
        coco = json.load(f)
    coco['categories'][2]['name'] = 'deux'
    other = tmp_path / 'renamed.json'
    other.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=r"another class list than the val "
                       r"set: class 2 is 'two' there but 'deux' here"):
        run_main('calibrate', [
            run.config, run.checkpoint, '--out', tmp_path / 'x.json',
            '--cfg-options', f'val_dataloader.dataset.ann_file={other}'
        ])
    assert not (tmp_path / 'x.json').exists()
