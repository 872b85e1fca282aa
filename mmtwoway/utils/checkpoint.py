"""Reading checkpoints in mmtwoway's tools: clear errors, strict loading.

mmengine's own loading is left as it is; the tools only diagnose its failures.
"""
import glob
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Dict, List, Optional

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
        pickle.UnpicklingError: ``weights_only`` refused an object in it:
            mmengine's (the message says to import the stack fixes) or
            one that would run code (torch's message says which).
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
    except pickle.UnpicklingError as err:
        if 'mmengine.' not in str(err):
            raise
        # A Runner checkpoint on torch >= 2.6 without the opt-in fixes.
        raise pickle.UnpicklingError(
            f'checkpoint {path} holds mmengine objects that torch.load '
            'refuses with weights_only=True: `import mmtwoway_stack_fixes` '
            'first (docs/stack_fixes.md).') from err
    except (RuntimeError, EOFError, OSError, KeyError, ValueError,
            zipfile.BadZipFile) as err:
        raise CheckpointError(path, _diagnose(path, err)) from err


def _is_local(path: str) -> bool:
    """Whether mmengine loads ``path`` from the local file system."""
    return '://' not in path  # http(s)://, open-mmlab://, s3:// ...


def unreadable_checkpoint(paths: List[Optional[str]]
                          ) -> Optional[CheckpointError]:
    """The error of the first local checkpoint of ``paths`` that cannot be
    read, or None.

    Called after a run failed, to say which checkpoint it could not load
    (torch's own message is ``KeyError: 101``, ``EOFError`` or a miniz
    error without the file name).

    Args:
        paths (List[Optional[str]]): Checkpoints the run loads (None and
            URLs are skipped).

    Returns:
        CheckpointError or None.
    """
    for path in paths:
        if not path or not _is_local(path) or not osp.isfile(
                osp.expanduser(path)):
            continue
        try:
            read_checkpoint(path)
        except CheckpointError as err:
            return err
        except Exception:  # noqa: BLE001 (readable; refused otherwise)
            continue
    return None


def checkpoints_of(cfg: Any) -> List[str]:
    """The checkpoints a config's run loads: ``load_from`` (or the one
    ``resume`` finds in the work dir) and every ``init_cfg.checkpoint``.

    Args:
        cfg (Config): The run's config.

    Returns:
        List[str]: Paths or URLs, in no particular order.
    """
    found = []
    if cfg.get('load_from'):
        found.append(cfg.load_from)
    elif cfg.get('resume') and cfg.get('work_dir'):
        from mmengine.runner import find_latest_checkpoint
        latest = find_latest_checkpoint(cfg.work_dir)
        if latest:
            found.append(latest)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and isinstance(
                    init.get('checkpoint'), str):
                found.append(init['checkpoint'])
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg.get('model'))
    return found


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

    Local files go through :func:`read_checkpoint`; URLs and other schemes
    through mmengine's ``CheckpointLoader``, as ``load_from`` does.

    Args:
        path (str):
            A local file, ``http(s)://`` URL, ``from-torchvision://`` ...

    Returns:
        The loaded checkpoint, on the CPU.
    """
    if _is_local(path):
        return read_checkpoint(path)
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
