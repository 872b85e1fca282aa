"""torchvision ImageNet weights in mmpretrain backbones.

Randomly initialised torchvision models are saved to disk like the real
IMAGENET1K_V1 files, then converted (tool and ``from-torchvision://``) and
loaded through the model-base configs: every key must land (strict load,
and every tensor equal afterwards) and the features must match
torchvision's own forward.
"""
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.registry import MODELS

import mmtwoway  # noqa: F401  (registers the from-torchvision:// scheme)
from mmtwoway.models.backbones import convert_torchvision_state_dict
from tools.model_converters import torchvision_to_mmpretrain

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_BASES = osp.join(ROOT, 'configs', '_base_', 'models')


# Large backbones: `make test-fast` skips them.
pytestmark = [pytest.mark.usefixtures('one_thread'), pytest.mark.slow]


@pytest.fixture(scope='module')
def torchvision_file(tmp_path_factory):
    """``arch -> (eval-mode random torchvision model, its saved .pth)``."""
    folder = tmp_path_factory.mktemp('torchvision')
    cache = {}

    def get(arch):
        if arch not in cache:
            torch.manual_seed(len(cache))
            model = getattr(torchvision.models, arch)(weights=None).eval()
            # Random BN statistics, so that a dropped buffer would show.
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
            path = folder / f'{arch}.pth'
            torch.save(model.state_dict(), path)
            cache[arch] = (model, str(path))
        return cache[arch]

    return get


def torchvision_features(arch, model, x):
    """The feature map torchvision feeds to its classifier."""
    if arch.startswith('densenet'):
        return F.relu(model.features(x))
    if arch.startswith('regnet'):
        return model.trunk_output(model.stem(x))
    trunk = torch.nn.Sequential(model.conv1, model.bn1, model.relu,
                                model.maxpool, model.layer1, model.layer2,
                                model.layer3, model.layer4)
    return trunk(x)


def run_tool(argv):
    torchvision_to_mmpretrain.main(argv)


def load_base(name, checkpoint, **backbone):
    """The model of ``configs/_base_/models/<name>.py``, weights loaded the
    way a user's ``--cfg-options model.backbone.init_cfg.checkpoint=...``
    loads them."""
    cfg = Config.fromfile(osp.join(MODEL_BASES, f'{name}.py'))
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': checkpoint})
    cfg.model.backbone.update(backbone)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def assert_backbone_equals(model, expected):
    state = model.backbone.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize('arch, base', [
    ('resnet50', 'r50'),
    ('resnext50_32x4d', 'rx50'),
    ('densenet169', 'd169'),
])
def test_tool_maps_every_key_and_features_match(torchvision_file, tmp_path,
                                                arch, base):
    tv_model, src = torchvision_file(arch)
    dst = tmp_path / f'{arch}_mmpretrain.pth'
    run_tool([src, str(dst)])
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    classifier = 'classifier' if arch.startswith('densenet') else 'fc'
    assert saved['meta']['dropped'] == [f'{classifier}.weight',
                                        f'{classifier}.bias']
    assert all(k.startswith('backbone.') for k in saved['state_dict'])
    converted = {k[len('backbone.'):]: v
                 for k, v in saved['state_dict'].items()}

    # Strict: no key of the mmpretrain backbone is missing or unexpected.
    cfg = Config.fromfile(osp.join(MODEL_BASES, f'{base}.py'))
    cfg.model.backbone.pop('init_cfg')
    backbone = MODELS.build(cfg.model.backbone)
    backbone.load_state_dict(converted, strict=True)
    backbone.eval()  # mmpretrain's ResNet.train() returns None
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = backbone(x)[-1]
        theirs = torchvision_features(arch, tv_model, x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)

    # Offline use: the converted file given to the zoo config's init_cfg.
    assert_backbone_equals(load_base(base, str(dst)), converted)


@pytest.mark.parametrize('base, arch, backbone', [
    ('r50_tv', 'resnet50', {}),
    ('rx50_tv', 'resnext50_32x4d', {}),
    ('d169_tv', 'densenet169', {}),
    ('regnety32gf', 'regnet_y_400mf', dict(arch='regnet_y_400mf')),
])
def test_from_torchvision_scheme_in_the_configs(torchvision_file, base, arch,
                                                backbone):
    tv_model, src = torchvision_file(arch)
    cfg = Config.fromfile(osp.join(MODEL_BASES, f'{base}.py'))
    url = cfg.model.backbone.init_cfg.checkpoint
    assert re.fullmatch(r'from-torchvision://https://download\.pytorch\.org/'
                        r'models/\w+-[0-9a-f]{8}\.pth', url)
    model = load_base(base, 'from-torchvision://' + src, **backbone)
    expected, _ = convert_torchvision_state_dict(tv_model.state_dict(),
                                                 prefix='')
    # Equal everywhere, so ResNet's zero_init_residual did not run after
    # the load and no tensor kept its random init.
    assert_backbone_equals(model, expected)


def test_legacy_densenet_names_and_wrappers(torchvision_file):
    tv_model, _ = torchvision_file('densenet169')
    current = tv_model.state_dict()
    # torchvision's published densenet169-b2777c0a.pth predates the
    # num_batches_tracked buffers and spells 'norm1' as 'norm.1'.
    legacy = {
        re.sub(r'(denselayer\d+\.(norm|conv))([12])\.', r'\1.\3.', k): v
        for k, v in current.items() if 'num_batches_tracked' not in k
    }
    assert any('.norm.1.' in k for k in legacy)
    expected, _ = convert_torchvision_state_dict(current, prefix='')
    got, dropped = convert_torchvision_state_dict(legacy, prefix='')
    assert dropped == ['classifier.weight', 'classifier.bias']
    assert got.keys() == {k for k in expected if 'num_batches' not in k}
    assert all(torch.equal(got[k], expected[k]) for k in got)
    # A DDP checkpoint inside {'state_dict': ...} converts the same.
    wrapped = {'state_dict': {'module.' + k: v for k, v in legacy.items()}}
    assert convert_torchvision_state_dict(wrapped, prefix='')[0].keys() == \
        got.keys()


def test_unknown_keys_are_named():
    conv = torch.zeros(1)
    with pytest.raises(ValueError, match='layer5.0.conv1.weight'):
        convert_torchvision_state_dict({'layer1.0.conv1.weight': conv,
                                        'layer5.0.conv1.weight': conv})
    with pytest.raises(ValueError, match='Not a torchvision'):
        convert_torchvision_state_dict({'encoder.weight': conv})
    with pytest.raises(ValueError, match='not tensors'):
        convert_torchvision_state_dict({'layer1.0.conv1.weight': 'x'})
    with pytest.raises(ValueError, match='URL or a path'):
        CheckpointLoader.load_checkpoint('from-torchvision://')
