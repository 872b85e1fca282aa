"""Fixes for known breakages of the OpenMMLab stack, applied on import.

Each fix is narrow, idempotent and tested in ``tests/test_utils``:

* ``allow_mmengine_checkpoints``: torch >= 2.6 loads checkpoints with
  ``weights_only=True``; mmengine 0.10 checkpoints hold a ``HistoryBuffer``
  and numpy arrays/scalars in their ``message_hub``, so ``--resume`` and
  ``load_from`` fail. We allowlist exactly those objects. ``weights_only`` is
  never switched off: a downloaded checkpoint still cannot run code.
* ``patch_cpu_distributed``: mmengine's PyTorch launcher calls
  ``torch.cuda.set_device`` and wraps models in DDP with ``device_ids``, both
  of which fail without CUDA. Without CUDA we initialise gloo and let DDP run
  on the CPU, so ``tools/dist_train.sh`` works on CPU-only machines.
* ``guard_transformers``: ``import mmpretrain.models`` crashes when
  transformers >= 5 is installed (mmpretrain 1.2's BLIP language model
  subclasses a class transformers 5 no longer has). We tell mmpretrain to
  skip its optional multimodal models, which mmtwoway does not use.
* ``quiet_mmcv_lite``: with ``mmcv-lite`` (no compiled ops), importing
  ``mmpretrain.models`` warns that mmcv's ``MultiScaleDeformableAttention``
  (a detection op) is missing, at the start of every tool. Classification
  never uses it, so exactly that warning is filtered.
* ``clear_checkpoint_errors``: an unreadable checkpoint (empty, text,
  truncated) gives one error naming the file wherever mmengine loads a
  local checkpoint (``load_from``, ``--resume``, ``init_cfg``), and
  mmpretrain's inferencers load a local checkpoint strictly (a head or
  architecture mismatch is an error naming the keys, not a log line); see
  :mod:`mmtwoway.utils.checkpoint`.
"""
import functools
import os
import pickle
import warnings
from importlib import metadata

import numpy as np
import torch


def _history_buffer_getattr(obj, name: str):
    """A ``getattr`` that unpickling may call on ``HistoryBuffer`` only.

    mmengine pickles ``HistoryBuffer``'s statistics methods by reference as
    ``getattr(HistoryBuffer, 'mean')``. Allowlisting the builtin ``getattr``
    would let a checkpoint walk from any object to arbitrary code, so the
    unpickler gets this restricted stand-in under the builtin's name.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is not HistoryBuffer or name.startswith('_') or not callable(
            getattr(HistoryBuffer, name, None)):
        raise pickle.UnpicklingError(
            f'mmtwoway refuses getattr({obj!r}, {name!r}) while loading a '
            'checkpoint: only HistoryBuffer statistics methods are allowed.')
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
    """Allowlist what mmengine checkpoints need under ``weights_only``."""
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
def patch_cpu_distributed() -> None:
    """Make mmengine's launcher and DDP wrapper work on CPU-only machines."""
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel

    dist_utils._init_dist_pytorch = functools.partial(
        _init_dist_pytorch_cpu, dist_utils._init_dist_pytorch)

    ddp_init = MMDistributedDataParallel.__init__

    @functools.wraps(ddp_init)
    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        # mmengine's Runner always passes device_ids=[LOCAL_RANK]; DDP
        # rejects device_ids for a module that lives on the CPU.
        if not torch.cuda.is_available():
            kwargs['device_ids'] = None
        ddp_init(self, module, detect_anomalous_params, **kwargs)

    MMDistributedDataParallel.__init__ = __init__


def transformers_too_new() -> bool:
    """Whether an installed transformers breaks ``import mmpretrain.models``."""
    try:
        version = metadata.version('transformers')
    except metadata.PackageNotFoundError:
        return False
    from mmengine.utils import digit_version
    return digit_version(version) >= digit_version('5.0.0')


@functools.cache  # each fix runs at most once per process
def guard_transformers() -> None:
    """Skip mmpretrain's multimodal models when transformers >= 5."""
    if not transformers_too_new():
        return
    import mmpretrain.utils.dependency as dependency
    if dependency.WITH_MULTIMODAL:
        dependency.WITH_MULTIMODAL = False
        warnings.warn(
            'transformers >= 5 is installed, which mmpretrain 1.2 cannot '
            'import; mmtwoway disabled mmpretrain\'s multimodal models (BLIP, '
            'CLIP, ...). Classification is unaffected. To use them, run '
            '`pip install "transformers<5"`.')


@functools.cache  # each fix runs at most once per process
def quiet_mmcv_lite() -> None:
    """Filter mmcv-lite's irrelevant MultiScaleDeformableAttention warning."""
    warnings.filterwarnings(
        'ignore',
        message='Fail to import ``MultiScaleDeformableAttention``',
        category=UserWarning)


@functools.cache  # each fix runs at most once per process
def clear_checkpoint_errors() -> None:
    """Local checkpoints load through :func:`read_checkpoint`."""
    from .checkpoint import install_checkpoint_loader
    install_checkpoint_loader()


@functools.cache  # each fix runs at most once per process
def strict_inferencer() -> None:
    """mmpretrain's inferencers load local checkpoints strictly."""
    from .checkpoint import install_strict_inferencer
    install_strict_inferencer()


def import_mmpretrain_models() -> None:
    """``import mmpretrain.models`` with a message that says what to do."""
    try:
        import mmpretrain.models  # noqa: F401
    except TypeError as err:  # the transformers >= 5 failure mode
        raise ImportError(
            'mmtwoway could not import mmpretrain.models. With transformers '
            '>= 5 installed this must happen after `import mmtwoway`; '
            'otherwise run `pip uninstall transformers` or `pip install '
            f'"transformers<5"`. Original error: {err}') from err


def apply_stack_fixes() -> None:
    """Apply every fix; call before anything imports ``mmpretrain.models``."""
    guard_transformers()
    allow_mmengine_checkpoints()
    patch_cpu_distributed()
    quiet_mmcv_lite()
    clear_checkpoint_errors()
    import_mmpretrain_models()
    strict_inferencer()
