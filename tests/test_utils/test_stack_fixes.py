"""The opt-in stack fixes (mmtwoway_stack_fixes), each against the real
failure."""
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

import mmtwoway_stack_fixes as fixes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_python(code: str, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True,
                          text=True,
                          env=env,
                          cwd=cwd,
                          timeout=300)


# ------------------------------------------------ (a) weights_only loading


def write_mmengine_checkpoint(path):
    """A checkpoint holding what a Runner saves in ``message_hub``."""
    hub = MessageHub.get_instance('mmtwoway-test-ckpt')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(1.0 / (i + 1)))
        hub.update_scalar('train/lr', 0.1)
    hub.update_info('iter', 3)
    hub.update_info('seed', np.int64(7))
    hub.update_info('mean', np.array([1.0, 2.0], dtype=np.float32))
    torch.save(
        dict(
            meta=dict(epoch=1, iter=3, seed=np.int64(7)),
            state_dict=dict(w=torch.ones(2)),
            message_hub=hub.state_dict()), path)


@pytest.mark.slow
def test_checkpoint_fixture_fails_only_as_known_without_the_fixes(tmp_path):
    path = tmp_path / 'ckpt.pth'
    write_mmengine_checkpoint(path)
    # Without the fixes (import mmtwoway included), plain mmengine cannot
    # load it under weights_only.
    res = run_python(f"""
        import mmtwoway
        from mmengine.runner.checkpoint import _load_checkpoint
        _load_checkpoint({str(path)!r}, map_location='cpu')
    """)
    # The fixture reproduces the known failure, unless mmengine fixed it;
    # that the fixes load it is checked below either way.
    if res.returncode != 0:
        assert 'HistoryBuffer' in res.stderr or 'weights_only' in res.stderr


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    write_mmengine_checkpoint(path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    hub = ckpt['message_hub']
    assert hub['log_scalars']['train/loss'].mean() == pytest.approx(
        (1 + 1 / 2 + 1 / 3) / 3)
    assert hub['runtime_info']['seed'] == 7
    assert ckpt['meta']['seed'] == 7
    # loaded with weights_only: the default is still on
    assert torch.load(str(path), weights_only=True)['meta']['iter'] == 3


class _RunsCode:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))


class _WalksAttributes:

    def __reduce__(self):
        # getattr on an allowlisted object other than HistoryBuffer
        return (getattr, (np.ndarray, '__class__'))


@pytest.mark.parametrize('payload', [_RunsCode(), _WalksAttributes()])
def test_checkpoints_still_cannot_run_code(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': payload}, path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')


def test_restricted_getattr_allows_only_history_buffer_statistics():
    from mmengine.logging.history_buffer import HistoryBuffer
    assert fixes._history_buffer_getattr(HistoryBuffer,
                                          'mean') is HistoryBuffer.mean
    for obj, name in [(HistoryBuffer, '__init__'), (np, 'load'),
                      (HistoryBuffer, '_statistics_methods')]:
        with pytest.raises(pickle.UnpicklingError):
            fixes._history_buffer_getattr(obj, name)


# ------------------------------------------------- (b) CPU distributed init


def test_cpu_distributed_patches_are_installed():
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel
    assert dist_utils._init_dist_pytorch.func is fixes._init_dist_pytorch_cpu
    assert MMDistributedDataParallel.__init__.__wrapped__ is not None


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_mmengine_init_dist_uses_gloo_without_cuda(tmp_path):
    # mmengine's own init_dist, as Runner calls it, with the NCCL default.
    res = run_python(
        """
        import mmtwoway_stack_fixes, torch
        from mmengine.dist import init_dist, get_world_size
        from mmengine.model import MMDistributedDataParallel
        init_dist('pytorch', backend='nccl')
        assert torch.distributed.get_backend() == 'gloo'
        ddp = MMDistributedDataParallel(
            module=torch.nn.Linear(2, 2), device_ids=[0])
        print('world', get_world_size(), type(ddp).__name__)
        """,
        env_extra=dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                       MASTER_ADDR='127.0.0.1', MASTER_PORT='29531'))
    assert res.returncode == 0, res.stderr
    assert 'world 1 MMDistributedDataParallel' in res.stdout


# ----------------------------------------------------- (c) transformers >= 5


FAKE_MODULE = """
REMOVED = {removed!r}
_MADE = {{}}


class _Anything(type):
    # Placeholder classes answer any attribute with a no-op function.
    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def __getattr__(name):
    # Any other public name resolves to one placeholder class per name.
    if name in REMOVED or name.startswith('__'):
        raise AttributeError(name)
    if name not in _MADE:
        bases = ()
        if name.startswith('Auto') and __name__ == 'transformers':
            import importlib
            auto_factory = importlib.import_module(
                'transformers.models.auto.auto_factory')
            bases = (auto_factory._BaseAutoModelClass, )
        meta = type(bases[0]) if bases else _Anything
        _MADE[name] = meta(name, bases, {{}})
    return _MADE[name]
"""


def make_fake_transformers(root):
    """A transformers 5 stand-in with the API change that breaks mmpretrain.

    transformers 5 removed ``apply_chunking_to_forward`` and friends from
    ``transformers.modeling_utils``; mmpretrain 1.2's BLIP language model
    imports them in a ``try`` whose fallback sets ``PreTrainedModel = None``
    and then subclasses it: ``TypeError: NoneType takes no arguments``.
    """
    removed = {
        'modeling_utils': ['apply_chunking_to_forward',
                           'find_pruneable_heads_and_indices',
                           'prune_linear_layer']
    }
    modules = ['', 'activations', 'modeling_outputs', 'modeling_utils',
               'utils', 'models', 'models.bert', 'models.bert.configuration_bert',
               'models.auto', 'models.auto.auto_factory', 'models.opt',
               'models.opt.configuration_opt']
    for name in modules:
        folder = root.joinpath('transformers', *name.split('.') if name else [])
        folder.mkdir(parents=True, exist_ok=True)
        text = FAKE_MODULE.format(removed=removed.get(name, []))
        if not name:
            text = "__version__ = '5.0.0'\n" + text
        (folder / '__init__.py').write_text(text)
    info = root / 'transformers-5.0.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: transformers\nVersion: 5.0.0\n')


@pytest.mark.slow
def test_transformers_5_stand_in_fails_only_as_known(tmp_path):
    make_fake_transformers(tmp_path)
    res = run_python('import mmpretrain.models',
                     env_extra=dict(PYTHONPATH=str(tmp_path)))
    # The stand-in reproduces the known failure, unless mmpretrain fixed it
    # (then there is nothing left to reproduce); mmtwoway's own behaviour
    # is checked below either way.
    if res.returncode != 0:
        assert 'NoneType takes no arguments' in res.stderr, res.stderr[-2000:]


@pytest.mark.slow
def test_mmtwoway_alone_says_what_to_do_with_transformers_5(tmp_path):
    make_fake_transformers(tmp_path)
    res = run_python('import mmtwoway',
                     env_extra=dict(PYTHONPATH=os.pathsep.join(
                         [str(tmp_path), os.environ.get('PYTHONPATH', '')])))
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith('ImportError: mmpretrain 1.2 cannot import its '
                           'models with transformers >= 5'), last
    assert 'mmtwoway_stack_fixes' in last and 'transformers<5' in last


@pytest.mark.slow
def test_mmtwoway_imports_and_builds_models_with_transformers_5(tmp_path):
    make_fake_transformers(tmp_path)
    res = run_python(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            import mmtwoway_stack_fixes
            import mmtwoway
        from mmpretrain.registry import MODELS
        import torch
        model = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=18),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='TwoWayLinearClsHead', num_classes=3,
                      in_channels=512)))
        out = model(torch.randn(2, 3, 32, 32))
        print('ok', tuple(out.shape))
        print(any('transformers<5' in str(w.message) for w in caught))
        """,
        env_extra=dict(PYTHONPATH=os.pathsep.join(
            [str(tmp_path), os.environ.get('PYTHONPATH', '')])))
    assert res.returncode == 0, res.stderr
    assert 'ok (2, 3)' in res.stdout
    assert res.stdout.strip().endswith('True')  # it says what to do


@pytest.mark.slow
def test_tools_do_not_print_the_mmcv_lite_ops_warning():
    """mmcv-lite lacks MultiScaleDeformableAttention (a detection op) and
    mmcv warns about it on import; classification never uses it."""
    res = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'test.py'), '--help'],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert 'MultiScaleDeformableAttention' not in res.stdout + res.stderr
