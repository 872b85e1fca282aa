"""``TorchDefault``: the paper's classifier init, PyTorch's nn.Linear default.

The head of every paper config (``configs/_base_/models/*.py``) must start
as the authors' fresh ``nn.Linear(in_features, C)``: weights Kaiming-uniform
(a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and a bias uniform
in the same range — not mmpretrain's Normal(0.01) weights and zero bias.
"""
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import initialize
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import mmtwoway  # noqa: F401  (registers TorchDefault)
from mmtwoway.models.weight_init import TorchDefaultInit

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def paper_head(base='r50', num_classes=620):
    """The head of a model base, as the configs build it."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'models', f'{base}.py'))
    head = cfg.model.head
    head.num_classes = num_classes
    head.loss.bucket_size = None
    return MODELS.build(head)


def uniform_stats(t, bound):
    """(min, max, mean, std) of a tensor and the U(-b, b) moments."""
    return dict(lo=t.min().item(), hi=t.max().item(), mean=t.mean().item(),
                std=t.std().item(), expected_std=bound / math.sqrt(3))


@pytest.mark.parametrize('base, in_channels', [('r50', 2048),
                                               ('d169', 1664),
                                               ('regnety32gf', 3712)])
def test_paper_head_init_is_torch_linear_default(base, in_channels):
    head = paper_head(base)
    assert head.fc.in_features == in_channels
    with torch.no_grad():  # whatever was there before init_weights
        head.fc.weight.fill_(7.)
        head.fc.bias.fill_(7.)
    torch.manual_seed(0)
    head.init_weights()
    torch.manual_seed(0)
    reference = nn.Linear(in_channels, 620)
    # Same RNG state, same draws: exactly nn.Linear's construction.
    assert torch.equal(head.fc.weight, reference.weight)
    assert torch.equal(head.fc.bias, reference.bias)

    # And the statistics of a fresh nn.Linear, drawn independently.
    bound = 1 / math.sqrt(in_channels)
    for ours, theirs in ((head.fc.weight, nn.Linear(in_channels, 620).weight),
                         (head.fc.bias, nn.Linear(in_channels, 620).bias)):
        a, b = (uniform_stats(t.detach(), bound) for t in (ours, theirs))
        assert -bound <= a['lo'] and a['hi'] <= bound
        # The range is filled (a Normal(0.01) init would not be bounded
        # like this, a zero bias would not spread at all).
        assert a['hi'] > 0.9 * bound and a['lo'] < -0.9 * bound
        tol = 4 / math.sqrt(ours.numel())  # a few standard errors
        assert abs(a['mean']) < bound * tol * 2
        assert abs(a['std'] / a['expected_std'] - 1) < tol
        assert abs(a['std'] / b['std'] - 1) < 2 * tol


def test_default_head_init_is_unchanged_and_differs():
    """Without the config's init_cfg the head keeps mmpretrain's default,
    which is what the configs replace."""
    head = MODELS.build(dict(type='TwoWayLinearClsHead', num_classes=620,
                             in_channels=2048))
    head.init_weights()
    assert torch.all(head.fc.bias == 0)
    assert abs(head.fc.weight.std().item() - 0.01) < 0.001
    # Normal tails reach far beyond nn.Linear's bound 1/sqrt(2048) = 0.022.
    assert head.fc.weight.abs().max() > 2 / math.sqrt(2048)


def test_found_in_the_root_and_in_mmpretrains_scope():
    linear = nn.Linear(8, 3)
    # 'mmengine': the root registry, as when no Runner set a scope (a
    # script, gpu_check); 'mmpretrain': inside a Runner of our configs.
    for scope in ('mmengine', 'mmpretrain'):
        with torch.no_grad():
            linear.weight.zero_()
        module = nn.Sequential(linear)
        with DefaultScope.overwrite_default_scope(scope):
            initialize(module, dict(type='TorchDefault', layer='Linear'))
        assert linear.weight.abs().max() > 0
        assert linear.weight.abs().max() <= 1 / math.sqrt(8)


def test_only_the_named_layers_and_no_constant_bias():
    conv, linear = nn.Conv2d(3, 4, 3), nn.Linear(4, 2)
    with torch.no_grad():
        conv.weight.fill_(5.)
        linear.weight.fill_(5.)
    TorchDefaultInit(layer='Linear')(nn.Sequential(conv, linear))
    assert torch.all(conv.weight == 5.)
    assert linear.weight.abs().max() <= 0.5
    with pytest.raises(ValueError, match='bias'):
        TorchDefaultInit(layer='Linear', bias=0.)
