"""Every new ``configs/twoway_<dataset>_r50.py`` on its fixture.

The config loads, its train and test datasets build from the original-format
fixture (only ``data_root`` is overridden), two samples run through its real
pipelines, its data preprocessor stacks them, its head computes a finite
loss and its evaluator gives finite mAPs.
"""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, METRICS, MODELS

import original_formats as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# config name -> (fixture writer returning data_root, classes in the paper,
# partially labelled?)
CASES = {
    'voc07': (lambda tmp: F.write_voc(tmp, 2007), 20, False),
    'voc12': (lambda tmp: F.write_voc(tmp, 2012), 20, False),
    'vispr': (F.write_vispr, 68, False),
    'vaw': (F.write_vaw, 620, True),
    'wider': (F.write_wider, 14, True),
}


def run_pipeline(cfg, dataset, training):
    """Two samples through the pipeline, preprocessor, head and metric."""
    num_classes = len(dataset.CLASSES)
    batch = pseudo_collate([dataset[i] for i in range(min(2, len(dataset)))])
    # The config's data preprocessor (colour jitter and lighting in
    # training), as the Runner builds it into the model.
    preprocessor = MODELS.build(
        dict(cfg.data_preprocessor, num_classes=num_classes))
    data = preprocessor(batch, training=training)
    inputs, samples = data['inputs'], data['data_samples']
    # The paper's 224 x 224 crops (random resized / centre crops).
    assert tuple(inputs.shape) == (len(samples), 3, 224, 224)
    assert torch.isfinite(inputs).all()
    head_cfg = cfg.model.head.copy()
    # The fixture has fewer classes than the real dataset, and a batch of
    # two is one bucket.
    head_cfg.update(num_classes=num_classes)
    head_cfg.loss.update(bucket_size=None)
    head = MODELS.build(head_cfg)
    feats = (torch.randn(len(samples), head_cfg.in_channels), )
    if training:
        loss = head.loss(feats, samples)['loss']
        assert torch.isfinite(loss)
        return samples
    evaluators = cfg.test_evaluator
    if not isinstance(evaluators, (list, tuple)):
        evaluators = [evaluators]
    assert 'MultiLabelMAP' in [e['type'] for e in evaluators]
    predictions = [s.to_dict() for s in head.predict(feats, samples)]
    for evaluator in evaluators:
        metric = METRICS.build(evaluator)
        metric.process(None, predictions)
        results = metric.evaluate(len(samples))
        assert results and all(math.isfinite(v) for v in results.values())
    return samples


@pytest.mark.parametrize('name', list(CASES))
def test_config_builds_on_fixture(tmp_path, name):
    write, paper_classes, partial = CASES[name]
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'twoway_{name}_r50.py'))
    assert cfg.model.head.num_classes == paper_classes
    assert cfg.data_preprocessor.num_classes == paper_classes
    assert cfg.model.head.loss.type == 'TwoWayLoss'
    data_root = str(write(tmp_path))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    init_default_scope(cfg.default_scope)

    train = DATASETS.build(cfg.train_dataloader.dataset)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert not train.test_mode and test.test_mode
    assert train.CLASSES == test.CLASSES
    if name in ('voc07', 'voc12', 'wider'):  # fixtures with every class
        assert len(train.CLASSES) == paper_classes
    if name in ('vaw', 'wider'):
        # The instance box is cut first, then the paper's crop inside it.
        for pipeline in (cfg.train_dataloader.dataset.pipeline,
                         cfg.test_dataloader.dataset.pipeline):
            assert pipeline[0]['instance_context'] == 1.0

    samples = run_pipeline(cfg, train, training=True)
    assert all(('gt_score' in s) == partial for s in samples)
    samples = run_pipeline(cfg, test, training=False)
    if name.startswith('voc'):
        # The metric needs the difficult classes of the test images.
        assert all('gt_label_difficult' in s for s in samples)
