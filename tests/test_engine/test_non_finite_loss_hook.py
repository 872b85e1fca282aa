"""NonFiniteLossHook on real training runs that go wrong.

A learning rate of 1e30 makes the logits overflow after the first step; a
dataset with a NaN target makes the loss NaN at once. Both on the demo
data with mmengine's Runner. The run must stop with a message naming the
epoch and iteration (and the image, for the NaN target), and no
non-finite value may reach the weights: checked in the immediate mode
(CPU default) and in the GPU's sync-free mode (forced on the CPU).
"""
import os

import pytest
import torch
from demo_runner import (CocoWithNaNTarget, build_runner, demo_cfg,
                         make_data)
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from mmtwoway.engine.hooks import NonFiniteLossError, NonFiniteLossHook


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_data(str(tmp_path_factory.mktemp('demo')))


def weights_are_finite(runner) -> bool:
    return all(torch.isfinite(p).all() for p in runner.model.parameters())


def exploding_run(root, work_dir, sync_free):
    """SGD at lr 1e30: the first step is finite, the next forward pass
    overflows. No momentum and no weight decay, so that a step whose
    gradients were zeroed leaves the weights exactly as they were."""
    # 40 samples, batches of 16, drop_last: 2 iterations per epoch
    cfg = demo_cfg(root, work_dir, max_epochs=2, custom_hooks=[
        dict(type='NonFiniteLossHook', sync_free=sync_free, interval=100)
    ])
    cfg.optim_wrapper.optimizer = dict(type='SGD', lr=1e30)
    runner = build_runner(cfg)
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    return runner, str(err.value)


def test_exploding_run_stops_before_nan_reaches_the_weights(
        root, tmp_path, one_thread):
    # CPU: checked right after the forward pass, stopped there
    runner, message = exploding_run(root, str(tmp_path / 'a'), None)
    assert ('the training loss became non-finite (loss=nan) at epoch 1, '
            'iteration 2/2 (global iteration 2).') in message
    assert 'No target of that batch is NaN' in message
    assert 'stopped before the optimiser step' in message
    assert runner.iter == 1  # the second iteration never stepped
    assert weights_are_finite(runner)
    # (BatchNorm's running statistics are not weights: the bad forward
    # pass itself updates them, and the stopped run saves nothing.)
    after_first_step = {
        k: v.detach().clone() for k, v in runner.model.named_parameters()
    }
    assert not os.listdir(tmp_path / 'a') or not [
        f for f in os.listdir(tmp_path / 'a') if f.endswith('.pth')
    ]
    # The GPU's sync-free mode, forced on the CPU: flags read at the end of
    # the epoch; the bad step's gradients were zeroed on the device.
    runner, message = exploding_run(root, str(tmp_path / 'b'), True)
    assert ('the training loss became non-finite at epoch 1, iteration 2/2 '
            '(global iteration 2).') in message
    assert 'No non-finite value reached the weights' in message
    assert runner.iter == 2  # the epoch ran to its end
    for key, value in runner.model.named_parameters():
        assert torch.equal(value, after_first_step[key]), key
    # no checkpoint was written after the bad iteration
    assert not [f for f in os.listdir(tmp_path / 'b') if f.endswith('.pth')]


@pytest.mark.parametrize('sync_free', [None, True])
def test_a_nan_target_stops_the_run_naming_the_image(root, tmp_path,
                                                      sync_free, one_thread):
    cfg = demo_cfg(
        root, str(tmp_path / 'w'),
        custom_hooks=[dict(type='NonFiniteLossHook', sync_free=sync_free)],
        sampler=dict(type='DefaultSampler', shuffle=False))
    cfg.train_dataloader.dataset.type = 'CocoWithNaNTarget'
    runner = build_runner(cfg)
    image = runner.train_dataloader.dataset.get_data_info(
        CocoWithNaNTarget.nan_at)['img_path']
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    message = str(err.value)
    assert 'at epoch 1, iteration 1/2 (global iteration 1)' in message
    assert f'NaN targets (gt_score): image {image}.' in message
    assert weights_are_finite(runner)


def test_a_healthy_run_is_untouched(root, tmp_path, one_thread):
    """The hook changes nothing when nothing is wrong: the same weights
    as a run without it, bit for bit."""
    states = []
    for hooks in ([], [dict(type='NonFiniteLossHook', sync_free=True)]):
        runner = build_runner(
            demo_cfg(root, str(tmp_path / f'w{len(hooks)}'),
                     custom_hooks=hooks))
        runner.train()
        states.append(runner.model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match='interval must be None or a '
                       'positive int'):
        NonFiniteLossHook(interval=0)


# ------------------------------------------------------------------ AMP

@OPTIM_WRAPPERS.register_module(force=True)
class CpuScalerOptimWrapper(AmpOptimWrapper):
    """mmengine's AmpOptimWrapper with torch's GradScaler on the CPU.

    mmengine's wrapper refuses to start without CUDA; its backward / step
    (scale, unscale, skip, update) are what matter to the hook, and torch's
    GradScaler runs on the CPU. The forward stays float32.
    """

    def __init__(self, init_scale: float = 2.**16, **kwargs):
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.cast_dtype = None
        self.loss_scaler = torch.amp.GradScaler('cpu', init_scale=init_scale)

    def optim_context(self, model):
        return OptimWrapper.optim_context(self, model)


class Snapshot(Hook):
    """The weights as training starts (after their initialisation)."""

    def before_train(self, runner):
        self.weights = {
            k: v.detach().clone() for k, v in runner.model.named_parameters()
        }


def test_amp_skips_are_logged_not_stopped(root, tmp_path, one_thread,
                                          capsys):
    """A scale so large that the scaled gradients overflow: the scaler
    skips both steps of the epoch; the hook logs that and lets the run go
    on (the loss itself stays finite)."""
    cfg = demo_cfg(root, str(tmp_path / 'w'), custom_hooks=[
        dict(type='NonFiniteLossHook', sync_free=True)
    ])
    cfg.optim_wrapper = dict(type='CpuScalerOptimWrapper', init_scale=3e38,
                             optimizer=cfg.optim_wrapper.optimizer)
    runner = build_runner(cfg)
    snapshot = Snapshot()
    runner.register_hook(snapshot)
    runner.train()  # no error
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    # read every iteration (the logger's interval here): one line each
    for it, scale in ((1, '1.5e+38'), (2, '7.5e+37')):
        assert ('NonFiniteLossHook: the AMP loss scaler skipped 1 optimiser '
                'step(s) with non-finite gradients (the first at epoch 1, '
                f'iteration {it}/2 (global iteration {it})); the weights were'
                f' not changed by them. Loss scale now {scale}.') in logged
    for key, value in runner.model.named_parameters():  # never stepped
        assert torch.equal(value, snapshot.weights[key]), key


def test_amp_run_whose_loss_is_non_finite_still_stops(root, tmp_path,
                                                      one_thread):
    cfg = demo_cfg(root, str(tmp_path / 'w'), max_epochs=2, custom_hooks=[
        dict(type='NonFiniteLossHook', sync_free=True, interval=100)
    ])
    cfg.optim_wrapper = dict(type='CpuScalerOptimWrapper', init_scale=1.,
                             optimizer=dict(type='SGD', lr=1e30))
    runner = build_runner(cfg)
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    message = str(err.value)
    assert 'the training loss became non-finite at epoch 1, iteration 2/2' \
        in message
    assert 'The AMP loss scaler kept that step out of the weights.' in \
        message
    assert weights_are_finite(runner)
