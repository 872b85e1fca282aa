"""Table 8's ImageNet configs: protocol, targets, and a real Runner step.

Each config trains one iteration and validates with mmengine's Runner on an
ImageNet-layout fixture of real (scikit-learn digit) images, through the
config's own pipelines, at 64 px instead of 224.
"""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from PIL import Image
from sklearn.datasets import load_digits

import mmtwoway  # noqa: F401
from mmtwoway.utils.runtime import adapt_to_machine

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    loss: osp.join(ROOT, 'configs', 'imagenet', f'{loss}_in1k_r50.py')
    for loss in ('twoway', 'softmax', 'asl')
}
HEADS = {
    'twoway': 'TwoWayLinearClsHead',
    'softmax': 'LinearClsHead',
    'asl': 'MultiLabelLinearClsHead',
}


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def imagenet_root(tmp_path_factory):
    """mmpretrain's flat ImageNet layout: {train,val}/*.JPEG + meta/*.txt."""
    root = tmp_path_factory.mktemp('imagenet')
    (root / 'meta').mkdir()
    digits = load_digits()
    for split, first in (('train', 0), ('val', 10)):
        (root / split).mkdir()
        lines = []
        for i in range(first, first + 4):
            pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
            name = f'ILSVRC2012_{split}_{i:08d}.JPEG'
            Image.fromarray(pixels).convert('RGB').resize((40, 48)).save(
                root / split / name, format='JPEG')
            # labels at both ends of the 1000 classes
            lines.append(f'{name} {999 * (i % 2)}\n')
        (root / 'meta' / f'{split}.txt').write_text(''.join(lines))
    return root


@pytest.mark.parametrize('loss', list(CONFIGS))
def test_protocol_of_section_4_4(loss):
    cfg = Config.fromfile(CONFIGS[loss])
    assert cfg.model.backbone.type == 'ResNet'
    assert cfg.model.backbone.depth == 50
    # from scratch, initialised like torchvision's resnet50()
    assert cfg.model.backbone.zero_init_residual is False
    assert [i.type for i in cfg.model.backbone.init_cfg] == [
        'Kaiming', 'Constant']
    assert cfg.model.head.type == HEADS[loss]
    assert cfg.model.head.num_classes == 1000
    assert cfg.model.head.init_cfg == dict(type='TorchDefault',
                                           layer='Linear')
    optim = cfg.optim_wrapper
    assert optim.optimizer.lr == 0.1 and optim.paramwise_cfg is None
    assert optim.optimizer.momentum == 0.9 and optim.optimizer.nesterov
    assert optim.optimizer.weight_decay == 1e-4
    sched = cfg.param_scheduler
    assert sched.type == 'CosineAnnealingLR' and sched.convert_to_iter_based
    assert sched.T_max == sched.end == cfg.train_cfg.max_epochs == 90
    assert cfg.train_dataloader.batch_size * 4 == 512
    assert cfg.auto_scale_lr.base_batch_size == 512
    for split, loader in (('train', cfg.train_dataloader),
                          ('val', cfg.val_dataloader),
                          ('val', cfg.test_dataloader)):
        assert loader.dataset.type == 'ImageNet'
        assert loader.dataset.split == split
    train_ops = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert train_ops == ['DecodeRandomResizedCrop', 'PackInputs']
    # Jitter and lighting in the data preprocessor, as for multi-label.
    assert cfg.data_preprocessor.type == 'ColorAugmentDataPreprocessor'
    assert cfg.data_preprocessor.color_jitter.brightness == 0.4
    assert cfg.data_preprocessor.lighting.alphastd == 0.1
    assert cfg.data_preprocessor.num_classes == 1000
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, 5))
    if loss == 'twoway':
        assert cfg.model.head.loss.bucket_size == 128


@pytest.mark.parametrize('loss', ['twoway', 'asl'])
def test_single_labels_reach_the_loss_as_one_hot(loss):
    """The multi-label heads turn an ImageNet class into a one-hot row."""
    cfg = Config.fromfile(CONFIGS[loss])
    cfg.model.head.loss.pop('bucket_size', None)
    head = MODELS.build(cfg.model.head)
    feats = torch.randn(3, 2048)
    labels = [0, 5, 999]
    samples = [DataSample().set_gt_label(c) for c in labels]
    got = head.loss((feats, ), samples)['loss']
    one_hot = F.one_hot(torch.tensor(labels), 1000).float()
    want = head.loss_module(head(
        (feats, )), one_hot, avg_factor=len(labels))
    torch.testing.assert_close(got, want)
    # and a wrong target would give another value
    assert not torch.allclose(
        got, head.loss_module(head((feats, )), torch.zeros_like(one_hot),
                              avg_factor=len(labels)))


def test_asl_stays_finite_on_half_precision_logits():
    """Under fp16 AMP the head's logits are half precision; ASL's eps = 1e-8
    is 0 there, so a positive logit of -20 gave an infinite loss. The
    config's loss computes in float32."""
    from mmpretrain.models.losses import AsymmetricLoss
    cfg = Config.fromfile(CONFIGS['asl'])
    loss = MODELS.build(cfg.model.head.loss)
    logits = torch.full((2, 1000), -20., dtype=torch.float16,
                        requires_grad=True)
    target = F.one_hot(torch.tensor([3, 7]), 1000).float()
    value = loss(logits, target, avg_factor=2)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    # the same values as mmpretrain's loss in float32
    torch.testing.assert_close(
        value, AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.05)(
            logits.detach().float(), target, avg_factor=2))
    # the bare loss on half-precision logits is what the wrapper prevents
    bare = AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.05)
    assert not torch.isfinite(bare(logits.detach(), target.half(),
                                   avg_factor=2))


@pytest.mark.slow
@pytest.mark.parametrize('loss', list(CONFIGS))
def test_one_runner_iteration_and_top_k_accuracy(loss, imagenet_root,
                                                 tmp_path):
    cfg = Config.fromfile(CONFIGS[loss])
    cfg.work_dir = str(tmp_path)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.dataset.data_root = str(imagenet_root)
        loader.batch_size, loader.num_workers = 2, 0
    # 64 px instead of 224: the same transforms, 12x less compute.
    cfg.train_dataloader.dataset.pipeline[0].scale = 64
    cfg.val_dataloader.dataset.pipeline[0].update(resize=72, crop_size=64)
    if loss == 'twoway':
        cfg.model.head.loss.bucket_size = 2
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.param_scheduler.update(T_max=1, end=1)
    cfg.default_hooks.checkpoint = None  # a 200 MB file is of no use here
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(adapt_to_machine(cfg))
    before = runner.model.head.fc.weight.detach().clone()
    runner.train()
    assert runner.iter == 2  # 4 images, batch 2
    assert not torch.equal(before, runner.model.head.fc.weight)
    metrics = runner.val_loop.run()
    assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
    assert all(0 <= v <= 100 for v in metrics.values())
