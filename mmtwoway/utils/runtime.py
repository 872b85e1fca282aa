"""Adapt a config to the machine it runs on (used by tools/train.py, test.py).

The paper's CUDA configs (AMP, NCCL, pinned memory) still start on a CPU.
"""
import torch
from mmengine.config import Config
from mmengine.logging import print_log

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def adapt_to_machine(cfg: Config) -> Config:
    """Adjust ``cfg`` in place for the local machine and return it.

    The changes of the optimiser (AMP off, fused kernel dropped) are logged.

    * without CUDA: ``AmpOptimWrapper`` becomes ``OptimWrapper`` (mmengine's
      AMP wrapper requires CUDA), the distributed backend becomes gloo and
      dataloaders do not pin memory;
    * ``persistent_workers`` is switched off for loaders with no workers,
      where PyTorch rejects it;
    * an optimiser with ``fused=True`` that has no fused kernel for this
      machine's device becomes the default (foreach) one: the same update.
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
    _drop_unsupported_fused(cfg, 'cuda' if cuda else 'cpu')
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


def _fused_supported(optimizer: str, device: str) -> bool:
    """Whether ``torch.optim.<optimizer>(fused=True)`` runs on ``device``."""
    cls = getattr(torch.optim, optimizer, None)
    if cls is None:
        return True  # not torch's: let the optimiser itself decide
    try:
        cls([torch.zeros(1, device=device, requires_grad=True)], lr=0.1,
            fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def _drop_unsupported_fused(cfg: Config, device: str) -> None:
    """Remove ``fused=True`` from the optimiser where it cannot run."""
    wrapper = cfg.get('optim_wrapper')
    optimizer = wrapper.get('optimizer') if wrapper is not None else None
    if not optimizer or not optimizer.get('fused'):
        return
    name = optimizer.get('type')
    if isinstance(name, str) and not _fused_supported(name, device):
        optimizer.pop('fused')
        print_log(f'torch.optim.{name} has no fused kernel on {device} in '
                  f'torch {torch.__version__}: using its default '
                  'implementation (the same update).', logger='current')


def use_bf16(cfg: Config) -> Config:
    """Train in bfloat16 autocast without a loss scaler; return ``cfg``.

    bfloat16 has float32's exponent range, so gradients need no scaling.
    mmengine's ``AmpOptimWrapper`` builds a dynamic ``GradScaler`` even for
    bfloat16 (whose ``step`` reads an inf/NaN flag on the host every
    iteration unless the optimiser is fused); a disabled scaler steps the
    optimiser directly. The cost: bfloat16 keeps 8 bits of mantissa
    (fp16: 11), and no scaler skips an overflowing step: there
    ``NonFiniteLossHook`` zeroes its gradients on the device and stops the
    run at its next read (docs/gpu.md).

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

