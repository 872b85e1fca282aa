"""Machine adaptation and precision options of the tools' configs."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmtwoway.utils.runtime import use_bf16

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_bf16_is_autocast_without_a_loss_scaler():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'twoway_coco_r50.py'))
    assert cfg.optim_wrapper.loss_scale == 'dynamic'  # the paper's fp16
    use_bf16(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.loss_scale == dict(enabled=False)
    # the optimiser settings stay
    assert cfg.optim_wrapper.optimizer.lr == 0.001
    with pytest.raises(ValueError, match='optim_wrapper'):
        use_bf16(Config(dict()))


def steps_reading_the_host(scaler, op_recorder, syncing_ops):
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with op_recorder() as rec:
        for _ in range(3):
            loss = model(torch.randn(8, 4)).square().mean()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
    return sum(op in syncing_ops for op in rec.ops)


def test_a_disabled_scaler_steps_without_reading_the_host(
        op_recorder, syncing_ops):
    # What AmpOptimWrapper(loss_scale=dict(enabled=False)) builds: the
    # optimiser steps directly. A dynamic scaler reads its inf flag on the
    # host every step (the recorder sees it, so this check can fail).
    dynamic = torch.amp.GradScaler('cpu')
    disabled = torch.amp.GradScaler('cpu', enabled=False)
    assert steps_reading_the_host(dynamic, op_recorder, syncing_ops) >= 3
    assert steps_reading_the_host(disabled, op_recorder, syncing_ops) == 0
