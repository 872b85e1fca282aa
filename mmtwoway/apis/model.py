"""Load a trained model from its config and checkpoint, for inference."""
import contextlib
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Union

import torch
from mmengine.config import Config
from mmengine.model import BaseModel

from mmtwoway.utils.checkpoint import (check_state_dict, load_any,
                                       state_dict_of)

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


@contextlib.contextmanager
def _quiet_mmengine_info():
    """Keep mmengine's INFO lines (e.g. "Loads checkpoint by _local
    backend") out of a tool's output; warnings still show."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def load_model(config: Union[str, Config],
               checkpoint: str,
               device: Optional[str] = None,
               calibration: Union[None, str, bool] = None,
               topk: Optional[int] = None,
               cfg_options: Optional[Dict[str, Any]] = None) -> BaseModel:
    """Build the model of ``config``, load ``checkpoint``, set its decision.

    Unlike ``mmpretrain.get_model`` (``strict=False``: another class count
    only logs a size mismatch), loading is strict and a calibration file is
    checked against the checkpoint's classes. The result is an ordinary
    mmpretrain model, so ``ImageClassificationInferencer(model=...)`` runs it.

    Args:
        config (str | Config): A config file or object.
        checkpoint (str): A checkpoint of that config (``tools/train.py``'s).
        device (str, optional): Where to run; defaults to CUDA when available.
        calibration (str | bool, optional):
            A calibration file for the head (overrides the
            config's), ``False`` to drop the config's (top-1), or ``None``
            to keep the config's decision.
        topk (int, optional):
            Decide the ``topk`` best classes instead (no calibration).
        cfg_options (Dict[str, Any], optional):
            Config overrides, as ``--cfg-options`` gives them.

    Returns:
        BaseModel: in eval mode, with ``_config`` and ``_dataset_meta``
        (the checkpoint's class names) set as by ``mmpretrain.get_model``.

    Raises:
        FileNotFoundError: Missing config, checkpoint or calibration file.
        ValueError: The checkpoint cannot be read
            (:class:`~mmtwoway.utils.checkpoint.CheckpointError`) or does
            not fit the config (another class count or architecture: every
            mismatching key is named with both shapes), or the calibration
            file was made for other classes than the checkpoint's.
    """
    # mmpretrain's builder, and mmtwoway's modules registered in it.
    import mmtwoway  # noqa: F401
    from mmpretrain.apis import get_model

    cfg = _config(config, cfg_options)
    _set_decision(cfg.model.head, calibration, topk)
    with _quiet_mmengine_info():
        ckpt = load_any(checkpoint)
        # Builds the model as mmpretrain does (data preprocessor included);
        # the weights are loaded below, strictly.
        model = get_model(cfg, pretrained=False)
    num_classes = cfg.model.head.num_classes
    state = state_dict_of(ckpt)
    check_state_dict(model, state, checkpoint)
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
        model (BaseModel): The model.

    Returns:
        list[str]: Its classes, or ``class_0`` ... when nothing names them.
    """
    classes = (getattr(model, '_dataset_meta', None) or {}).get('classes')
    if classes:
        return list(classes)
    return [f'class_{i}' for i in range(model.head.num_classes)]
