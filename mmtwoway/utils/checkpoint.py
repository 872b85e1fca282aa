"""Reading checkpoints: clear errors for unreadable files, strict loading.

* :func:`read_checkpoint` loads a local checkpoint file or raises one
  :class:`CheckpointError` that names the file and says what is wrong with
  it (empty, not a PyTorch checkpoint, truncated, damaged) instead of
  torch's ``KeyError: 101`` / ``EOFError`` / miniz message. ``import
  mmtwoway`` installs it as mmengine's loader of local paths, so
  ``load_from``, ``--resume``, ``init_cfg`` and mmpretrain's ``get_model``
  give the same error. A file that ``weights_only`` refuses (one that would
  run code) keeps torch's own ``UnpicklingError``.
* :func:`check_state_dict` / :func:`load_strict` are for evaluation and
  inference (``tools/test.py``, ``predict``, ``calibrate``, ``visualize``,
  the inferencer): the checkpoint must hold exactly the model's weights, or
  the error names the checkpoint and every mismatching key with both
  shapes. Partial loading for fine-tuning (``load_from``, a backbone's
  ``init_cfg``) stays mmengine's non-strict loading, which logs the keys it
  skipped.
* :func:`install_strict_inferencer` makes mmpretrain's inferencers
  (``ImageClassificationInferencer(model=CONFIG, pretrained=CKPT)``) load
  a checkpoint path or URL strictly too: they use ``get_model``, which loads with
  ``strict=False`` and only logs a mismatch, leaving e.g. a classifier of
  another class count randomly initialised.
* :func:`previous_checkpoint` finds the newest other readable checkpoint
  of a work dir, for the message of a failed ``--resume``.
"""
import functools
import glob
import os
import os.path as osp
import re
import zipfile
from typing import Any, Dict, Optional

import torch

from .misc import listing

# How the legacy (pre-zip) torch.save format starts: a pickle (protocol 2).
_PICKLE_START = b'\x80'
_MAX_LISTED = 8


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read.

    Attributes:
        path: The file.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f'checkpoint {path} cannot be read: {reason}')


def _diagnose(path: str, err: BaseException) -> str:
    """What is wrong with a file that torch could not load."""
    with open(path, 'rb') as f:
        head = f.read(8)
    if head.startswith(b'PK') and not zipfile.is_zipfile(path):
        return ('the file is truncated (its zip directory is missing: was '
                'the save or the copy interrupted?)')
    if isinstance(err, EOFError):
        return 'the file is truncated (it ends in the middle of the data)'
    return f'the file is damaged ({type(err).__name__}: {err})'


def read_checkpoint(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` of a local checkpoint, with an error naming the file.

    Args:
        path (str): The checkpoint file.
        map_location (Any): As for ``torch.load``.

    Returns:
        The loaded object (a dict for mmengine checkpoints).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        CheckpointError: The file is empty, not a PyTorch checkpoint,
            truncated or damaged.
        pickle.UnpicklingError: ``weights_only`` refused an object in it
            (a checkpoint that would run code); torch's message says which.
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointError(path, 'the file is empty (0 bytes)')
    with open(path, 'rb') as f:
        head = f.read(16)
    if not head.startswith((b'PK', _PICKLE_START)):
        raise CheckpointError(
            path, f'it is not a PyTorch checkpoint (it starts with '
            f'{head!r}; torch.save files are zip archives)')
    try:
        return torch.load(path, map_location=map_location)
    except (RuntimeError, EOFError, OSError, KeyError, ValueError,
            zipfile.BadZipFile) as err:
        raise CheckpointError(path, _diagnose(path, err)) from err


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's loader of local paths, through :func:`read_checkpoint`."""
    return read_checkpoint(filename, map_location)


def install_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints through :func:`read_checkpoint`."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)


def state_dict_of(checkpoint: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint, without a DDP ``module.`` prefix."""
    state = checkpoint.get('state_dict', checkpoint)
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def check_state_dict(model: torch.nn.Module, state: Dict[str, torch.Tensor],
                     path: str) -> None:
    """Raise unless ``state`` holds exactly the model's weights and shapes.

    Args:
        model (torch.nn.Module): The model the weights are for.
        state (Dict[str, torch.Tensor]):
            The checkpoint's state dict (see :func:`state_dict_of`).
        path (str): The checkpoint file, for the message.

    Raises:
        ValueError: Names the checkpoint and every mismatching key: weights
            of another shape (both shapes), missing and unexpected keys; a
            classifier of another class count is said first.
    """
    own = model.state_dict()
    shapes = [(k, tuple(v.shape), tuple(own[k].shape))
              for k, v in state.items()
              if k in own and hasattr(v, 'shape') and v.shape != own[k].shape]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if not (shapes or missing or unexpected):
        return
    parts = []
    head = getattr(model, 'head', None)
    classes = getattr(head, 'num_classes', None)
    for key, theirs, ours in shapes:
        if key.startswith('head.') and theirs and ours and \
                theirs[0] != ours[0] and ours[0] == classes:
            parts.append(
                f'it has {theirs[0]} classes ({key} of shape {theirs}) but '
                f"the config's model.head.num_classes is {classes}")
            break
    if shapes:
        parts.append(f'{len(shapes)} weight(s) of another shape (checkpoint '
                     'vs model): ' + listing(
                         [f'{k} {a} vs {b}' for k, a, b in shapes],
                         _MAX_LISTED, '; '))
    if missing:
        parts.append(f'{len(missing)} missing: ' +
                     listing(missing, _MAX_LISTED, '; '))
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected: ' +
                     listing(unexpected, _MAX_LISTED, '; '))
    raise ValueError(
        f'checkpoint {path} does not fit the model of the config: ' +
        '; '.join(parts) + '. Use the config the checkpoint was trained '
        'with (to fine-tune from it instead, use load_from in a training '
        'config, which loads what fits and logs what it skips).')


def load_any(path: str) -> Any:
    """Load a checkpoint from a local file or any scheme mmengine knows.

    Local files go through :func:`read_checkpoint` (installed as mmengine's
    local loader by ``import mmtwoway``); URLs and other schemes through
    mmengine's ``CheckpointLoader``, as ``load_from`` does.

    Args:
        path (str):
            A local file, ``http(s)://`` URL, ``from-torchvision://`` ...

    Returns:
        The loaded checkpoint, on the CPU.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


def load_strict(model: torch.nn.Module, path: str) -> Dict[str, Any]:
    """Load a checkpoint into ``model``; every weight must fit exactly.

    Args:
        model (torch.nn.Module): The model (unwrapped).
        path (str):
            The checkpoint (a local file or a URL, see :func:`load_any`).

    Returns:
        dict: The checkpoint (``meta`` etc.).

    Raises:
        FileNotFoundError, CheckpointError: See :func:`read_checkpoint`.
        ValueError: See :func:`check_state_dict`.
    """
    checkpoint = load_any(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(path, f'it holds a {type(checkpoint).__name__}'
                              ', not a dict of weights')
    state = state_dict_of(checkpoint)
    check_state_dict(model, state, path)
    model.load_state_dict(state, strict=True)
    return checkpoint


def _dataset_meta(checkpoint: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The dataset meta a checkpoint carries (as mmpretrain reads it)."""
    meta = checkpoint.get('meta') or {}
    if 'dataset_meta' in meta:
        return meta['dataset_meta']
    if 'CLASSES' in meta:  # mmcls 0.x
        return {'classes': meta['CLASSES']}
    return None


def _strict_inferencer_init(original):
    """``BaseInferencer.__init__`` that loads a local checkpoint strictly."""

    @functools.wraps(original)
    def __init__(self,
                 model,
                 pretrained=True,
                 device=None,
                 device_map=None,
                 offload_folder=None,
                 **kwargs):
        from mmengine.model import BaseModel
        if not isinstance(pretrained, str):  # True: the zoo's weights
            return original(self, model, pretrained, device, device_map,
                            offload_folder, **kwargs)
        if not isinstance(model, BaseModel):
            from mmpretrain.apis import get_model
            model = get_model(model, pretrained=False, **kwargs)
        checkpoint = load_strict(model, pretrained)
        meta = _dataset_meta(checkpoint)
        if meta:
            model._dataset_meta = meta
        return original(self, model, False, device, device_map,
                        offload_folder)

    return __init__


def install_strict_inferencer() -> None:
    """Make mmpretrain's inferencers load local checkpoints strictly."""
    from mmpretrain.apis.base import BaseInferencer
    if not getattr(BaseInferencer.__init__, '_mmtwoway_strict', False):
        BaseInferencer.__init__ = _strict_inferencer_init(
            BaseInferencer.__init__)
        BaseInferencer.__init__._mmtwoway_strict = True


def previous_checkpoint(path: str) -> Optional[str]:
    """The newest other checkpoint beside ``path`` that can be read.

    Args:
        path (str): A checkpoint that could not be read.

    Returns:
        str or None: A ``*.pth`` file of the same folder, newest first,
        that :func:`read_checkpoint` loads; None if there is none.
    """
    folder = osp.dirname(osp.abspath(path))
    candidates = [
        p for p in glob.glob(osp.join(folder, '*.pth'))
        if osp.abspath(p) != osp.abspath(path)
    ]
    candidates.sort(key=lambda p: (os.stat(p).st_mtime, p), reverse=True)
    for candidate in candidates:
        try:
            read_checkpoint(candidate)
        except Exception:  # noqa: BLE001 (any failure: try the next one)
            continue
        return candidate
    return None


def resume_hint(path: str) -> str:
    """What to do when ``--resume`` could not read ``path``.

    Args:
        path (str): The checkpoint that could not be read.

    Returns:
        str: A sentence naming the newest other readable checkpoint of its
        folder and the command option that resumes from it, or saying
        that there is none.
    """
    previous = previous_checkpoint(path)
    if previous is not None:
        return (f'The previous checkpoint {previous} can be read: resume '
                f'from it with --resume {previous}')
    return (f'No other checkpoint in {osp.dirname(osp.abspath(path))} can '
            'be read: train again without --resume.')
