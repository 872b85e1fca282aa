"""The paper's four CNNs as model bases, and the RegNetY wrapper.

Every base builds from its config without downloading (init_cfg dropped),
runs one real SGD step of the two-way loss on a 2-image batch at 64 px,
and the RegNetY-32GF trunk ends with 3712 channels.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.ops.misc import SqueezeExcitation

import mmtwoway  # noqa: F401  (registers TorchvisionRegNet)
from mmtwoway.models.backbones import TorchvisionRegNet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_BASES = osp.join(ROOT, 'configs', '_base_', 'models')
SMALL = 'regnet_y_400mf'  # same code path as 32gf, 100x fewer FLOPs


pytestmark = pytest.mark.usefixtures('one_thread')


def test_out_indices_return_every_requested_stage():
    net = TorchvisionRegNet(SMALL, out_indices=(0, 1, -1)).eval()
    with torch.no_grad():
        feats = net(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [
        net.out_channels[0], net.out_channels[1], net.out_channels[3]]
    assert [f.shape[-1] for f in feats] == [16, 8, 2]


def test_frozen_stages_keep_weights_and_statistics():
    net = TorchvisionRegNet(SMALL, frozen_stages=2).train()
    frozen = [net.stem, net.trunk_output[0], net.trunk_output[1]]
    live = [net.trunk_output[2], net.trunk_output[3]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in live for p in m.parameters())
    bn_frozen = [m for f in frozen for m in f.modules()
                 if isinstance(m, _BatchNorm)]
    bn_live = [m for f in live for m in f.modules()
               if isinstance(m, _BatchNorm)]
    assert all(not m.training for m in bn_frozen)
    assert all(m.training for m in bn_live)
    before = [m.running_mean.clone() for m in bn_frozen + bn_live]
    net(torch.randn(2, 3, 64, 64))
    after = [m.running_mean for m in bn_frozen + bn_live]
    n = len(bn_frozen)
    assert all(torch.equal(a, b) for a, b in zip(before[:n], after[:n]))
    assert not all(torch.equal(a, b) for a, b in zip(before[n:], after[n:]))


def test_norm_eval_freezes_every_batch_norm():
    net = TorchvisionRegNet(SMALL, norm_eval=True).train()
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(not m.training for m in norms)
    assert all(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='regnet_y_3gf_typo'), 'unknown arch'),
    (dict(arch=SMALL, out_indices=(4, )), 'out_indices'),
    (dict(arch=SMALL, frozen_stages=5), 'frozen_stages'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TorchvisionRegNet(**kwargs)


def two_image_batch(num_classes):
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, 64, 64), generator=g,
                            dtype=torch.uint8) for _ in range(2)]
    samples = [DataSample().set_gt_label([0, 3]),
               DataSample().set_gt_label([num_classes - 1])]
    return dict(inputs=inputs, data_samples=samples)


def build_base(base, backbone_type, channels):
    """The classifier of a model base, without its pretrained init."""
    cfg = Config.fromfile(osp.join(MODEL_BASES, base))
    model_cfg = cfg.model
    # Pretrained ImageNet init on real runs; the URL is never fetched here.
    init = model_cfg.backbone.pop('init_cfg')
    assert init.type == 'Pretrained' and init.prefix == 'backbone'
    assert init.checkpoint.endswith('.pth')
    assert model_cfg.backbone.type == backbone_type
    assert model_cfg.head.type == 'TwoWayLinearClsHead'
    assert model_cfg.head.in_channels == channels
    assert model_cfg.head.loss.bucket_size == 128
    model_cfg.head.loss.bucket_size = None  # a 2-image batch is one bucket
    model_cfg.data_preprocessor = dict(
        type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], to_rgb=True)
    torch.manual_seed(0)
    # Built, not init_weights()-ed: that would only fetch the checkpoint.
    return MODELS.build(model_cfg)


def train_one_iteration(model):
    """One SGD step on two 64 px images; both ends of the net must move."""
    model.train()
    first_conv = next(p for p in model.backbone.parameters() if p.dim() == 4)
    before = (first_conv.detach().clone(),
              model.head.fc.weight.detach().clone())
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log = model.train_step(two_image_batch(model.head.num_classes), wrapper)
    assert torch.isfinite(log['loss']) and log['loss'] > 0
    assert not torch.equal(before[0], first_conv)
    assert not torch.equal(before[1], model.head.fc.weight)


@pytest.mark.parametrize('base, backbone_type, channels', [
    ('rx50.py', 'ResNeXt', 2048),
    ('d169.py', 'DenseNet', 1664),
])
def test_model_base_trains_one_iteration(base, backbone_type, channels):
    train_one_iteration(build_base(base, backbone_type, channels))


@pytest.mark.slow
def test_regnety32gf_base_has_se_3712_channels_and_trains():
    # One build for both checks: RegNetY-32GF has 145M parameters.
    model = build_base('regnety32gf.py', 'TorchvisionRegNet', 3712)
    net = model.backbone
    assert net.arch == 'regnet_y_32gf'
    assert net.out_channels == (232, 696, 1392, 3712)
    assert any(isinstance(m, SqueezeExcitation) for m in net.modules())
    with torch.no_grad():
        feats = net.eval()(torch.randn(1, 3, 64, 64))
    assert isinstance(feats, tuple) and len(feats) == 1
    assert feats[0].shape == (1, 3712, 2, 2)
    train_one_iteration(model)
