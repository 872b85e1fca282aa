"""Adapt a config to the machine it runs on (used by tools/train.py, test.py).

The paper's configs are written for CUDA GPUs (AMP, NCCL, pinned memory).
The same config must still start on a CPU-only machine (CI, a laptop, a CPU
cluster), so the tools adjust what cannot work there and say so in the log.
"""
import torch
from mmengine.config import Config
from mmengine.logging import print_log

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def adapt_to_machine(cfg: Config) -> Config:
    """Adjust ``cfg`` in place for the local machine and return it.

    * without CUDA: ``AmpOptimWrapper`` becomes ``OptimWrapper`` (mmengine's
      AMP wrapper requires CUDA), the distributed backend becomes gloo and
      dataloaders do not pin memory;
    * ``persistent_workers`` is switched off for loaders with no workers,
      where PyTorch rejects it.
    """
    cuda = torch.cuda.is_available()
    wrapper = cfg.get('optim_wrapper')
    if not cuda and wrapper is not None and wrapper.get(
            'type') == 'AmpOptimWrapper':
        wrapper.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            wrapper.pop(key, None)
        print_log('No CUDA device: training in float32 with OptimWrapper '
                  'instead of AmpOptimWrapper.', logger='current')
    if not cuda:
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        cfg.env_cfg.dist_cfg.backend = 'gloo'
    for name in _LOADERS:
        loader = cfg.get(name)
        if not loader:
            continue
        if not cuda:
            loader.pin_memory = False
        if loader.get('num_workers', 0) == 0:
            loader.persistent_workers = False
    return cfg


def use_bf16(cfg: Config) -> Config:
    """Train in bfloat16 autocast without a loss scaler; return ``cfg``.

    bfloat16 has float32's exponent range, so gradients need no scaling.
    mmengine's ``AmpOptimWrapper`` builds a dynamic ``GradScaler`` even for
    bfloat16, whose ``step`` reads an inf/NaN flag on the host every
    iteration; a disabled scaler steps the optimiser directly. The cost:
    bfloat16 keeps 8 bits of mantissa (fp16: 11), and an overflowing step
    is no longer skipped.

    Args:
        cfg (Config): A config with an ``optim_wrapper``.

    Returns:
        Config: ``cfg``, its ``optim_wrapper`` an ``AmpOptimWrapper`` with
        ``dtype='bfloat16'`` and ``loss_scale=dict(enabled=False)``.
    """
    wrapper = cfg.get('optim_wrapper')
    if wrapper is None:
        raise ValueError('--bf16: the config has no optim_wrapper to '
                         'switch to bfloat16.')
    wrapper.type = 'AmpOptimWrapper'
    wrapper.dtype = 'bfloat16'
    wrapper.loss_scale = dict(enabled=False)
    return cfg

