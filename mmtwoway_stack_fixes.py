"""Opt-in fixes that let a stock MMPretrain 1.2 stack run on torch >= 2.6.

Importing this applies them once; see docs/stack_fixes.md for each fix.
"""
import functools
import os
import pickle
import warnings
from importlib import metadata

import numpy as np
import torch

__all__ = [
    'allow_mmengine_checkpoints', 'cpu_distributed', 'guard_transformers',
    'quiet_mmcv_lite', 'apply_all'
]


def _history_buffer_getattr(obj, name: str):
    """A ``getattr`` that unpickling may call on ``HistoryBuffer`` only.

    mmengine pickles ``HistoryBuffer``'s statistics methods by reference as
    ``getattr(HistoryBuffer, 'mean')``. Allowlisting the builtin ``getattr``
    would let a checkpoint walk from any object to arbitrary code, so the
    unpickler gets this restricted stand-in under the builtin's name.

    Args:
        obj: The object unpickling asks an attribute of.
        name (str): The attribute.

    Returns:
        The ``HistoryBuffer`` method.

    Raises:
        pickle.UnpicklingError: Any other object or attribute.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is not HistoryBuffer or name.startswith('_') or not callable(
            getattr(HistoryBuffer, name, None)):
        raise pickle.UnpicklingError(
            f'refused getattr({obj!r}, {name!r}) while loading a checkpoint:'
            ' only HistoryBuffer statistics methods are allowed.')
    return getattr(obj, name)


def _numpy_globals() -> list:
    """numpy objects found in mmengine checkpoints, under numpy 1 and 2."""
    core = getattr(np, '_core', None) or np.core  # numpy 2 renamed core
    multiarray = core.multiarray
    entries = [np.ndarray, np.dtype]
    entries += [getattr(np.dtypes, n) for n in getattr(np.dtypes, '__all__', [])]
    for fn in (multiarray.scalar, multiarray._reconstruct):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            entries.append((fn, f'{module}.{fn.__name__}'))
    return entries


@functools.cache  # each fix runs at most once per process
def allow_mmengine_checkpoints() -> None:
    """Allowlist what mmengine checkpoints hold for ``weights_only`` loads.

    torch >= 2.6 loads with ``weights_only=True``; an mmengine 0.10
    checkpoint's ``message_hub`` holds ``HistoryBuffer`` objects and numpy
    arrays and scalars, so ``resume`` and ``load_from`` fail. Exactly those
    objects are allowed; ``weights_only`` itself stays on.
    """
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return  # torch < 2.4 loads without weights_only by default
    from mmengine.logging.history_buffer import HistoryBuffer
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')] +
        _numpy_globals())


def _init_dist_pytorch_cpu(original, backend: str = 'nccl', **kwargs):
    """mmengine's ``_init_dist_pytorch``, with a gloo path without CUDA."""
    if torch.cuda.is_available():
        return original(backend, **kwargs)
    if backend != 'gloo':
        warnings.warn(f'No CUDA device: using the gloo backend instead of '
                      f'{backend!r} for distributed training on the CPU.')
    kwargs.pop('init_backend', None)
    torch.distributed.init_process_group(
        backend='gloo',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


@functools.cache  # each fix runs at most once per process
def cpu_distributed() -> None:
    """Let mmengine's PyTorch launcher and DDP wrapper run without CUDA.

    mmengine calls ``torch.cuda.set_device`` when it starts a process group
    and the Runner always passes ``device_ids=[LOCAL_RANK]`` to DDP, which
    rejects it for a module on the CPU. Without CUDA, the group starts on
    gloo and DDP gets no ``device_ids``; with CUDA nothing changes.
    """
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel

    dist_utils._init_dist_pytorch = functools.partial(
        _init_dist_pytorch_cpu, dist_utils._init_dist_pytorch)

    ddp_init = MMDistributedDataParallel.__init__

    @functools.wraps(ddp_init)
    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        if not torch.cuda.is_available():
            kwargs['device_ids'] = None
        ddp_init(self, module, detect_anomalous_params, **kwargs)

    MMDistributedDataParallel.__init__ = __init__


def transformers_too_new() -> bool:
    """Whether an installed transformers breaks ``import mmpretrain.models``.

    Returns:
        bool: transformers >= 5 is installed.
    """
    try:
        version = metadata.version('transformers')
    except metadata.PackageNotFoundError:
        return False
    from mmengine.utils import digit_version
    return digit_version(version) >= digit_version('5.0.0')


@functools.cache  # each fix runs at most once per process
def guard_transformers() -> None:
    """Skip mmpretrain's multimodal models when transformers >= 5.

    mmpretrain 1.2's BLIP language model subclasses a transformers class
    that transformers 5 removed, so ``import mmpretrain.models`` raises
    ``TypeError``. Must run before anything imports ``mmpretrain.models``.
    """
    if not transformers_too_new():
        return
    import mmpretrain.utils.dependency as dependency
    if dependency.WITH_MULTIMODAL:
        dependency.WITH_MULTIMODAL = False
        warnings.warn(
            'transformers >= 5 is installed, which mmpretrain 1.2 cannot '
            'import; mmtwoway_stack_fixes disabled mmpretrain\'s multimodal '
            'models (BLIP, CLIP, ...). Classification is unaffected. To use '
            'them, run `pip install "transformers<5"`.')


@functools.cache  # each fix runs at most once per process
def quiet_mmcv_lite() -> None:
    """Filter mmcv-lite's warning about a detection op classification never
    uses (``MultiScaleDeformableAttention``), printed by every tool."""
    warnings.filterwarnings(
        'ignore',
        message='Fail to import ``MultiScaleDeformableAttention``',
        category=UserWarning)


def apply_all() -> None:
    """Apply every fix; each runs once, however often this is called."""
    guard_transformers()
    allow_mmengine_checkpoints()
    cpu_distributed()
    quiet_mmcv_lite()


apply_all()
