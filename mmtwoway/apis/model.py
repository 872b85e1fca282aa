"""Load a trained model from its config and checkpoint, for inference.

``mmpretrain.get_model`` builds the model, but loads weights with
``strict=False``: a checkpoint with another class count only logs a size
mismatch and leaves the classifier randomly initialised, and a
calibration file is never compared with the checkpoint's classes.
:func:`load_model` refuses both, names the file and says what to do. The
result is an ordinary mmpretrain model (``_config``, ``_dataset_meta``
set), so mmpretrain's ``ImageClassificationInferencer(model=...)`` runs it.
"""
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Union

import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader

_DECISION_KEYS = ('calibration', 'thr', 'topk')


def _config(config: Union[str, Config],
            cfg_options: Optional[Dict[str, Any]]) -> Config:
    """A private copy of the config with the options merged."""
    if isinstance(config, Config):
        cfg = config.copy()
    else:
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file {config} does not exist')
        cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _set_decision(head: Config, calibration: Union[None, str, bool],
                  topk: Optional[int]) -> None:
    """Override the head's decision: a calibration file, or top-k."""
    if calibration is None and topk is None:
        return
    if (calibration is False and topk is None
            and head.get('type') != 'TwoWayLinearClsHead'):
        return  # another head keeps its own decision (only scores needed)
    if calibration and topk:
        raise ValueError('give a calibration file or topk, not both')
    if head.get('type') != 'TwoWayLinearClsHead':
        raise ValueError(f'the head {head.get("type")!r} does not take a '
                         'calibration file or topk override; only '
                         'TwoWayLinearClsHead does')
    for key in _DECISION_KEYS:
        head.pop(key, None)
    if calibration:
        head.calibration = calibration
    else:
        head.topk = topk or 1


def _state_dict(checkpoint: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint, without a DDP ``module.`` prefix."""
    state = checkpoint.get('state_dict', checkpoint)
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def _check_weights(model: torch.nn.Module, state: Dict[str, torch.Tensor],
                   path: str, num_classes: int) -> None:
    """Raise unless ``state`` has exactly the model's weights and shapes."""
    own = model.state_dict()
    for key, value in state.items():
        if key in own and value.shape != own[key].shape:
            if key.startswith('head.') and value.dim() and value.shape[
                    0] != own[key].shape[0]:
                raise ValueError(
                    f'checkpoint {path} has {value.shape[0]} classes ('
                    f'{key} of shape {tuple(value.shape)}) but the config\'s '
                    f'model.head.num_classes is {num_classes}: use the '
                    'config the checkpoint was trained with.')
            raise ValueError(
                f'checkpoint {path} does not fit the config: {key} has '
                f'shape {tuple(value.shape)} there but '
                f'{tuple(own[key].shape)} in the model.')
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f'checkpoint {path} does not fit the config: missing '
            f'{missing[:5]}{" ..." if len(missing) > 5 else ""}, unexpected '
            f'{unexpected[:5]}{" ..." if len(unexpected) > 5 else ""}; use '
            'the config the checkpoint was trained with.')


def load_model(config: Union[str, Config],
               checkpoint: str,
               device: Optional[str] = None,
               calibration: Union[None, str, bool] = None,
               topk: Optional[int] = None,
               cfg_options: Optional[Dict[str, Any]] = None) -> BaseModel:
    """Build the model of ``config``, load ``checkpoint``, set its decision.

    Args:
        config: A config file or object.
        checkpoint: A checkpoint of that config (``tools/train.py``'s).
        device: Where to run; defaults to CUDA when available.
        calibration: A calibration file for the head (overrides the
            config's), ``False`` to drop the config's (top-1), or ``None``
            to keep the config's decision.
        topk: Decide the ``topk`` best classes instead (no calibration).
        cfg_options: Config overrides, as ``--cfg-options`` gives them.

    Returns:
        BaseModel: in eval mode, with ``_config`` and ``_dataset_meta``
        (the checkpoint's class names) set as by ``mmpretrain.get_model``.

    Raises:
        FileNotFoundError: Missing config, checkpoint or calibration file.
        ValueError: The checkpoint does not fit the config (e.g. another
            class count), or the calibration file was made for other
            classes than the checkpoint's.
    """
    # mmpretrain's builder, and mmtwoway's modules registered in it.
    import mmtwoway  # noqa: F401
    from mmpretrain.apis import get_model

    cfg = _config(config, cfg_options)
    _set_decision(cfg.model.head, calibration, topk)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    # Builds the model as mmpretrain does (data preprocessor included);
    # the weights are loaded below, strictly.
    model = get_model(cfg, pretrained=False)
    num_classes = cfg.model.head.num_classes
    state = _state_dict(ckpt)
    _check_weights(model, state, checkpoint, num_classes)
    model.load_state_dict(state, strict=True)

    meta = (ckpt.get('meta') or {}).get('dataset_meta') or {}
    classes = meta.get('classes')
    decision = getattr(model.head, 'decision', None)
    if classes is not None:
        if len(classes) != num_classes:
            raise ValueError(
                f'checkpoint {checkpoint} names {len(classes)} classes but '
                f'the config\'s model.head.num_classes is {num_classes}')
        if decision is not None:
            decision.check_classes(classes, f'checkpoint {checkpoint}')
    elif decision is not None and decision.classes is not None:
        classes = decision.classes
    if classes is not None:
        model._dataset_meta = dict(meta, classes=tuple(classes))
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return model.to(device).eval()


def model_classes(model: BaseModel) -> List[str]:
    """The class names of a model from :func:`load_model`.

    Args:
        model: The model.

    Returns:
        list[str]: Its classes, or ``class_0`` ... when nothing names them.
    """
    classes = (getattr(model, '_dataset_meta', None) or {}).get('classes')
    if classes:
        return list(classes)
    return [f'class_{i}' for i in range(model.head.num_classes)]
