"""The paper schedule's fused SGD, the non-finite guard under ``--bf16`` and
checkpoints that resume across precisions, with mmengine's real
``AmpOptimWrapper`` and torch's real ``GradScaler`` on the CPU.

mmengine's AMP wrapper refuses to be built without CUDA; it is built here
with ``torch.cuda.is_available`` answering True for that call only. Its
scaler then runs on the CPU tensors it is given, and its autocast on the
CPU is bfloat16.
"""
import copy
import os.path as osp
from unittest import mock

import pytest
import torch
from demo_runner import build_runner, demo_cfg, make_data
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper

import mmtwoway  # noqa: F401  (registers everything)
from mmtwoway.engine.hooks import NonFiniteLossError
from mmtwoway.utils.runtime import adapt_to_machine, use_bf16

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCHEDULE = osp.join(ROOT, 'configs', '_base_', 'schedules',
                    'multilabel_40e.py')


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_data(str(tmp_path_factory.mktemp('demo')))


def build_amp(model, cfg):
    """``build_optim_wrapper`` for an AMP config on a machine without CUDA."""
    with mock.patch('torch.cuda.is_available', return_value=True):
        return build_optim_wrapper(model, cfg)


def prebuilt(runner):
    """The Runner with its (AMP) optim wrapper built; ``train`` keeps it."""
    with mock.patch('torch.cuda.is_available', return_value=True):
        runner.optim_wrapper = runner.build_optim_wrapper(
            runner.optim_wrapper)
    return runner


# --------------------------------------------------------------- fused SGD

class Net(torch.nn.Module):
    """A backbone and a ``head`` (lr_mult 10 in the paper's schedule)."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten())
        self.head = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.head(self.backbone(x))


def schedule_wrapper(fused: bool) -> dict:
    cfg = Config.fromfile(SCHEDULE).optim_wrapper
    assert cfg.optimizer.fused is True  # the paper configs' setting
    if not fused:
        cfg.optimizer.pop('fused')
    cfg.optimizer.lr = 0.05  # large enough for the updates to show
    return cfg


def train_steps(fused: bool, amp: bool, steps: int = 6):
    torch.manual_seed(0)
    model = Net()
    cfg = schedule_wrapper(fused)
    if amp:  # fp16 dynamic loss scaling, as the config
        wrapper = build_amp(model, cfg)
        assert isinstance(wrapper, AmpOptimWrapper)
    else:
        cfg.type = 'OptimWrapper'
        cfg.pop('loss_scale')
        wrapper = build_optim_wrapper(model, cfg)
    assert bool(wrapper.optimizer.defaults['fused']) == fused
    lrs = sorted({g['lr'] for g in wrapper.optimizer.param_groups})
    assert lrs == [0.05, pytest.approx(0.5)]  # backbone, head x10
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        x = torch.randn(4, 3, 8, 8, generator=g)
        loss = model(x).square().mean()
        if step == 3:  # an overflowing step: the scaler must skip it
            loss = loss * float('inf') if amp else loss
        wrapper.update_params(loss)
    scale = wrapper.loss_scaler.get_scale() if amp else None
    return model, wrapper, scale


@pytest.mark.parametrize('amp', [False, True])
def test_fused_sgd_is_the_same_update(amp, one_thread):
    reference, ref_wrapper, ref_scale = train_steps(False, amp)
    fused, wrapper, scale = train_steps(True, amp)
    assert scale == ref_scale
    if amp:  # one step skipped: the scale was halved once from 2**16
        assert scale == 2.**15
    torch.manual_seed(0)
    init = Net()  # the weights both runs started from
    for (name, a), b in zip(reference.named_parameters(),
                            fused.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)
        assert not torch.equal(a, init.get_parameter(name))  # it trained
    ref_state = ref_wrapper.optimizer.state
    for a, b in zip(reference.parameters(), fused.parameters()):
        torch.testing.assert_close(
            wrapper.optimizer.state[b]['momentum_buffer'],
            ref_state[a]['momentum_buffer'], rtol=1e-6, atol=1e-7)


def test_cpu_fallback_keeps_the_fused_optimiser():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'twoway_coco_r50.py'))
    adapt_to_machine(cfg)
    if not torch.cuda.is_available():
        assert cfg.optim_wrapper.type == 'OptimWrapper'
    # torch's SGD has a fused CPU kernel: the config keeps it
    assert cfg.optim_wrapper.optimizer.fused is True
    # an optimiser without a fused kernel here falls back to its default
    cfg.optim_wrapper.optimizer.type = 'ASGD'
    cfg.optim_wrapper.optimizer.fused = True
    adapt_to_machine(cfg)
    assert 'fused' not in cfg.optim_wrapper.optimizer


# ----------------------------------------------- the guard under --bf16

def weights_are_finite(runner) -> bool:
    return all(torch.isfinite(p).all() for p in runner.model.parameters())


@pytest.mark.parametrize('precision', ['float32', 'bf16'])
def test_nan_gradients_never_reach_the_weights(root, tmp_path, precision,
                                               one_thread):
    """SGD at lr 1e30: the second iteration's loss and gradients are NaN.
    The hook in its GPU (sync-free) mode must zero them, whatever the
    precision; with ``--bf16`` the disabled scaler skips nothing."""
    cfg = demo_cfg(root, str(tmp_path), max_epochs=2, custom_hooks=[
        dict(type='NonFiniteLossHook', sync_free=True, interval=100)
    ])
    cfg.optim_wrapper.optimizer = dict(type='SGD', lr=1e30)
    if precision == 'bf16':
        use_bf16(cfg)
    runner = prebuilt(build_runner(cfg))
    scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
    assert (scaler is not None and not scaler.is_enabled()) == (
        precision == 'bf16')
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    assert weights_are_finite(runner)
    message = str(err.value)
    assert 'at epoch 1, iteration 2/2' in message
    assert 'No non-finite value reached the weights' in message
    assert 'AMP loss scaler' not in message  # none kept anything out
    assert ('mixed precision without a loss scaler' in message) == (
        precision == 'bf16')


# ------------------------------------------- resuming across precisions

def run(root, work_dir, precision, epochs, resume_from=None, hooks=True):
    cfg = demo_cfg(root, str(work_dir), max_epochs=epochs,
                   custom_hooks=[dict(type='NonFiniteLossHook')]
                   if hooks else [])
    cfg.param_scheduler.T_max = 2
    if precision == 'bf16':
        use_bf16(cfg)
    elif precision == 'fp16':
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if resume_from:
        cfg.resume, cfg.load_from = True, resume_from
    runner = build_runner(cfg)
    if precision != 'float32':
        prebuilt(runner)
    runner.train()
    return runner, osp.join(str(work_dir), f'epoch_{epochs}.pth')


@pytest.fixture(scope='module')
def checkpoints(root, tmp_path_factory):
    """One epoch trained in bf16 and one in fp16 (both real runs)."""
    out = {}
    for precision in ('bf16', 'fp16'):
        _, out[precision] = run(root, tmp_path_factory.mktemp(precision),
                                precision, 1)
    return out


@pytest.mark.slow
def test_checkpoints_hold_their_scaler_state(checkpoints):
    bf16 = torch.load(checkpoints['bf16'], weights_only=False)
    fp16 = torch.load(checkpoints['fp16'], weights_only=False)
    assert bf16['optimizer']['loss_scaler'] == {}  # the disabled scaler
    assert fp16['optimizer']['loss_scaler']['scale'] > 0


@pytest.mark.slow
def test_bf16_checkpoint_without_the_hook_cannot_resume_in_fp16(
        root, tmp_path, checkpoints, one_thread):
    # What the hook prevents (so that the test below can fail).
    with pytest.raises(RuntimeError, match='source state dict is empty'):
        run(root, tmp_path, 'fp16', 2, checkpoints['bf16'], hooks=False)


@pytest.mark.slow
@pytest.mark.parametrize('saved,resumed', [('bf16', 'fp16'),
                                           ('fp16', 'bf16'),
                                           ('fp16', 'float32'),
                                           ('bf16', 'float32')])
def test_a_checkpoint_resumes_in_the_other_precision(
        root, tmp_path, checkpoints, saved, resumed, one_thread, capsys):
    start = torch.load(checkpoints[saved], weights_only=False)
    runner, _ = run(root, tmp_path, resumed, 2, checkpoints[saved])
    assert runner.epoch == 2 and runner.iter == 2 * start['meta']['iter']
    assert weights_are_finite(runner)
    captured = capsys.readouterr()
    warned = 'trained without a loss scaler (--bf16); resuming with fp16' \
        in captured.out + captured.err
    assert warned == ((saved, resumed) == ('bf16', 'fp16'))
    if resumed == 'fp16':  # the scale starts again from its initial value
        assert runner.optim_wrapper.loss_scaler.is_enabled()
    # the optimiser's own state (momentum) was resumed in every case
    state = copy.deepcopy(runner.optim_wrapper.optimizer.state_dict())
    assert state['state']
