"""What ``import mmtwoway`` (``custom_imports``) loads, and what it must not."""
import json
import subprocess
import sys

import pytest

# A subprocess: `make test-fast` skips it.
pytestmark = pytest.mark.slow


def test_runtime_import_leaves_out_tools_of_tests_and_deployment():
    code = ('import json, sys, mmtwoway; print(json.dumps(sorted('
            'm for m in sys.modules)))')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=300, check=True)
    modules = set(json.loads(res.stdout.splitlines()[-1]))
    # what a training run uses is registered ...
    for name in ('mmtwoway.structures', 'mmtwoway.models.heads',
                 'mmtwoway.evaluation.metrics', 'mmtwoway.datasets',
                 'mmtwoway.engine.hooks'):
        assert name in modules, name
    # ... and nothing else is imported
    for top in ('sklearn', 'matplotlib', 'onnx', 'onnxruntime',
                'mmtwoway.deployment', 'tools'):
        assert not any(m == top or m.startswith(top + '.')
                       for m in modules), top


# Run in a fresh interpreter: every mmengine / mmcv / mmpretrain module is
# imported first, then the host framework is recorded before and after
# `import mmtwoway`. Objects are kept (compared with `is`), not their ids.
SNAPSHOT = r'''
import json, sys, warnings
import torch
from mmengine.registry import Registry
from mmengine.runner.checkpoint import CheckpointLoader
import mmengine.dist.utils
from mmengine.model.wrappers import MMDistributedDataParallel
import mmpretrain.utils.dependency as dependency
from mmpretrain.utils import register_all_modules
register_all_modules(init_default_scope=False)
import mmpretrain.apis
import mmcv.transforms

HOSTS = ('mmengine', 'mmcv', 'mmpretrain')


def host_modules():
    return {name: mod for name, mod in list(sys.modules.items())
            if mod is not None and name.split('.')[0] in HOSTS}


def registries():
    """Every registry of the host packages and all their children."""
    found, todo = {}, []
    for mod in host_modules().values():
        todo += [v for v in vars(mod).values() if isinstance(v, Registry)]
    while todo:
        reg = todo.pop()
        if id(reg) not in found:
            found[id(reg)] = reg
            todo += list(reg._children.values())
    return found


def snapshot():
    mods = host_modules()
    classes = {}
    for name, mod in mods.items():
        for attr, value in list(vars(mod).items()):
            if isinstance(value, type) and value.__module__ == name:
                classes[f'{name}.{attr}'] = (value, dict(vars(value)))
    return dict(
        modules={name: (mod, dict(vars(mod))) for name, mod in mods.items()},
        classes=classes,
        registries={key: (f'{reg.scope}::{reg.name}', dict(reg._module_dict))
                    for key, reg in registries().items()},
        schemes=dict(CheckpointLoader._schemes),
        filters=list(warnings.filters),
        safe_globals=list(torch.serialization.get_safe_globals()),
        multimodal=dependency.WITH_MULTIMODAL,
        named=dict(
            ddp_init=MMDistributedDataParallel.__init__,
            inferencer_init=mmpretrain.apis.base.BaseInferencer.__init__,
            init_dist_pytorch=mmengine.dist.utils._init_dist_pytorch),
    )


def ours(obj):
    return (getattr(obj, '__module__', '') or '').split('.')[0] == 'mmtwoway'


before = snapshot()
import mmtwoway  # noqa: E402
after = snapshot()
changed, added = [], []
for name, (mod, attrs) in before['modules'].items():
    now = vars(mod)
    for attr, value in attrs.items():
        if attr not in now or now[attr] is not value:
            changed.append(f'module {name}.{attr}')
    for attr in set(now) - set(attrs):
        if not isinstance(now[attr], type(sys)):  # a submodule imported
            changed.append(f'module {name}.{attr} (new)')
for name, (cls, attrs) in before['classes'].items():
    now = vars(cls)
    # _schemes: rebuilt by any new scheme; compared entry by entry below
    for attr in (set(attrs) | set(now)) - {'_schemes'}:
        if attrs.get(attr, changed) is not now.get(attr, added):
            changed.append(f'class {name}.{attr}')
for key, (title, entries) in before['registries'].items():
    now = after['registries'][key][1]
    for name, obj in entries.items():
        if now.get(name) is not obj:
            changed.append(f'registry {title} {name}')
    for name in set(now) - set(entries):
        (added if ours(now[name]) else changed).append(
            f'registry {title} {name}')
for key in set(after['registries']) - set(before['registries']):
    changed.append(f'new registry {after["registries"][key][0]}')
for prefix, loader in before['schemes'].items():
    if after['schemes'].get(prefix) is not loader:
        changed.append(f'checkpoint scheme {prefix!r}')
for prefix in set(after['schemes']) - set(before['schemes']):
    (added if ours(after['schemes'][prefix]) else changed).append(
        f'checkpoint scheme {prefix!r}')
for key in ('filters', 'safe_globals', 'multimodal'):
    if before[key] != after[key]:
        changed.append(key)
for key, obj in before['named'].items():
    if after['named'][key] is not obj:
        changed.append(key)
print(json.dumps(dict(changed=sorted(changed), added=sorted(added),
                      modules=len(before['modules']),
                      classes=len(before['classes']),
                      registries=len(before['registries']))))
'''


def test_import_mmtwoway_only_adds_its_own_registry_entries():
    res = subprocess.run([sys.executable, '-c', SNAPSHOT],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.splitlines()[-1])
    assert report['changed'] == []
    # the snapshot saw the host framework and mmtwoway's additions
    assert report['modules'] > 300 and report['registries'] > 20
    assert report['classes'] > 500
    assert 'registry mmpretrain::model TwoWayLoss' in report['added']
    assert 'registry mmpretrain::transform LoadCheckedImageFromFile' in \
        report['added']
    assert "checkpoint scheme 'from-torchvision://'" in report['added']


# mmpretrain 1.2's own test of the inferencer (tests/test_apis/
# test_inference.py::TestImageClassificationInferencer::test_init) records
# how the weights are loaded; the same observation with and without the
# plugin. Its sdist ships no tests, so the behaviour is checked here.
INFERENCER = r'''
import json, sys
if sys.argv[1] == 'plugin':
    import mmtwoway  # noqa: F401
import mmengine.runner
from mmpretrain.apis import ImageClassificationInferencer

calls = []


def record(model, filename, map_location=None, **kwargs):
    calls.append([type(model.backbone).__name__, filename, map_location])
    return {}  # a checkpoint without meta


mmengine.runner.load_checkpoint = record
name = 'mobilenet-v3-small-050_3rdparty_in1k'
ImageClassificationInferencer(name)  # the model zoo's weights
ImageClassificationInferencer(name, pretrained='custom.pth')
print(json.dumps(calls))
'''


def test_mmpretrain_inferencer_loads_weights_as_without_the_plugin():
    seen = {}
    for mode in ('stock', 'plugin'):
        res = subprocess.run([sys.executable, '-c', INFERENCER, mode],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        seen[mode] = json.loads(res.stdout.splitlines()[-1])
    assert seen['plugin'] == seen['stock']
    (zoo, custom) = seen['stock']
    assert zoo[0] == 'MobileNetV3' and zoo[1].startswith('https://')
    assert custom == ['MobileNetV3', 'custom.pth', 'cpu']
