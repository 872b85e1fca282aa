"""A Table 7 cell trained by the real mmengine Runner on fixture images:
the BCE cell's class-frequency hook, the param groups (lr 0.01 head /
0.001 backbone) and the cosine schedule stepped every iteration."""
import json
import math
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import mmtwoway  # noqa: F401  (registers everything)
from tools.misc.coco_writer import CocoWriter
from mmtwoway.models.losses import frequency_weights
from mmtwoway.utils.runtime import adapt_to_machine

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Four images, two iterations of two: labels (class indices) per image.
LABELS = [[0, 5], [5], [0], [79]]


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """An MS-COCO-layout folder with COCO's 80 category ids."""
    root = tmp_path_factory.mktemp('coco')
    coco_ids = [i for i in range(1, 91) if i not in
                (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    writer = CocoWriter([dict(id=i, name=f'c{i}') for i in coco_ids])
    rng = np.random.default_rng(0)
    (root / 'train2014').mkdir()
    for n, labels in enumerate(LABELS):
        name = f'COCO_train2014_{n:012d}.jpg'
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), np.uint8)).save(
            root / 'train2014' / name)
        image_id = writer.add_image(name, 80, 60)
        for label in labels:
            writer.add_annotation(image_id, coco_ids[label], [5, 5, 20, 20])
    writer.dump(str(root / 'annotations' / 'instances_train2014.json'))
    return root


def test_bce_cell_trains_with_the_papers_schedule(coco_root, tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'bce_coco_r50.py'))
    cfg.work_dir = str(tmp_path)
    cfg.model.backbone.init_cfg = None  # no download
    cfg.train_dataloader.dataset.data_root = str(coco_root)
    cfg.train_dataloader.update(batch_size=2, num_workers=0)
    # The cell's own pipeline, cropped to 64 px instead of 224 to keep the
    # CPU steps short; nothing checked here depends on the size.
    (crop, ) = [t for t in cfg.train_dataloader.dataset.pipeline
                if t['type'] == 'DecodeRandomResizedCrop']
    crop.scale = 64
    cfg.train_cfg.max_epochs = 1  # the scheduler still spans 40 epochs
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    adapt_to_machine(cfg)  # AMP -> float32 without CUDA, as tools/train.py
    runner = Runner.from_cfg(cfg)
    runner.train()

    # The hook counted the four training images before the first step.
    loss = runner.model.head.loss_module
    pos = np.zeros(80)
    for labels in LABELS:
        pos[labels] += 1
    w_pos, w_neg = frequency_weights(pos, 4 - pos)
    np.testing.assert_allclose(loss.pos_weight.numpy(), w_pos.numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(loss.neg_weight.numpy(), w_neg.numpy(),
                               rtol=1e-6)

    # Param groups: 0.01 for the classifier, 0.001 for the rest, all with
    # Nesterov momentum 0.9 and weight decay 1e-4.
    names = {id(p): n for n, p in runner.model.named_parameters()}
    groups = runner.optim_wrapper.optimizer.param_groups
    for group in groups:
        (param, ) = group['params']
        expected = 0.01 if names[id(param)].startswith('head.') else 0.001
        assert group['initial_lr'] == pytest.approx(expected)
        assert group['momentum'] == 0.9 and group['nesterov']
        assert group['weight_decay'] == pytest.approx(1e-4)
    assert sum(names[id(g['params'][0])].startswith('head.')
               for g in groups) == 2  # fc.weight, fc.bias

    # Cosine per iteration: 40 epochs x 2 iterations = 80 steps. The log's
    # lr (first group: backbone) already moved within the first epoch.
    total = 40 * 2
    (log, ) = [p for p in tmp_path.glob('*/vis_data/*.json')
               if p.stem == p.parent.parent.name]
    lrs = [json.loads(line)['lr'] for line in log.read_text().splitlines()]
    cosine = [0.001 * 0.5 * (1 + math.cos(math.pi * t / total))
              for t in range(total)]
    assert lrs == pytest.approx(cosine[:2], rel=1e-9)
    head_group = next(g for g in groups
                      if names[id(g['params'][0])].startswith('head.'))
    for t in range(2, total):  # iterations 0 .. 79 train
        assert head_group['lr'] == pytest.approx(
            10 * cosine[t], rel=1e-6, abs=1e-12), t
        for scheduler in runner.param_schedulers:
            scheduler.step()
