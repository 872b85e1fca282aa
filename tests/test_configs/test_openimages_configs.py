"""configs/openimages/*: they build, and one CPU training iteration runs
through the mmengine Runner on a generated Open Images tree."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmtwoway  # noqa: F401  (registers everything)
from mmtwoway.utils.runtime import adapt_to_machine
from tools.misc import make_openimages_data as gen

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = ['twoway_openimages_r50.py', 'asl_openimages_r50.py']
CLASSES = 12


@pytest.fixture(scope='module')
def oi_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('openimages')
    gen.make(str(root), images=4, classes=CLASSES, files='jpeg', traps=True)
    return root


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_with_the_published_files(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'openimages', name))
    assert cfg.model.head.num_classes == cfg.data_preprocessor.num_classes
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.type == 'OpenImagesMultiLabel'
        assert 'ann_file' not in dataset and 'data_prefix' not in dataset
        kinds = [t['type'] for t in dataset.pipeline]
        assert 'OpenImagesRotate' in kinds
    assert cfg.train_dataloader.dataset.label_files == [
        gen.LABEL_FILES['train']]
    assert cfg.test_dataloader.dataset.image_files == [
        gen.IMAGE_FILES['test']]
    if name.startswith('twoway'):
        loss = cfg.model.head.loss
        assert loss.bucket_size == 4 * cfg.train_dataloader.batch_size


@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_one_training_iteration_on_the_runner(name, oi_root, tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'openimages', name))
    cfg.work_dir = str(tmp_path)
    # A small backbone and 12 classes: the CPU step stays short.
    cfg.model.backbone.update(depth=18, init_cfg=None)
    cfg.model.head.update(in_channels=512, num_classes=CLASSES)
    if 'bucket_size' in cfg.model.head.loss:
        cfg.model.head.loss.bucket_size = 4
    cfg.data_preprocessor.num_classes = CLASSES
    cfg.train_dataloader.dataset.data_root = str(oi_root)
    cfg.train_dataloader.update(batch_size=4, num_workers=0,
                                persistent_workers=False, pin_memory=False)
    (crop, ) = [t for t in cfg.train_dataloader.dataset.pipeline
                if t['type'] == 'DecodeRandomResizedCrop']
    crop.scale = 32
    cfg.train_cfg.max_epochs = 1
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.log_level = 'WARNING'
    adapt_to_machine(cfg)
    runner = Runner.from_cfg(cfg)
    before = runner.model.head.fc.weight.detach().clone()
    runner.train()
    assert runner.iter == 1  # 4 images, batch 4, one epoch
    after = runner.model.head.fc.weight.detach()
    assert torch.isfinite(after).all() and not torch.equal(before, after)
