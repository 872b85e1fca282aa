"""Run an exported model with onnxruntime, as ``tools/predict.py`` does.

Preprocessing is rebuilt from the model's metadata; results match the apis'.
"""
import json
import math
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..apis.inference import _BATCHES_PER_CHUNK, prediction
from ..datasets.transforms.loading import ImageReadError
from ..evaluation.decision import Decision
from .onnx_export import (INPUT, LABELS, LOGITS, METADATA_FORMAT,
                          METADATA_VERSION, require)
from .preprocessing import ImagePreprocessor

_KEYS = ('classes', 'decision', 'preprocessing', 'outputs', 'source')


def read_metadata(path: str, session=None) -> Dict[str, Any]:
    """The mmtwoway metadata of an exported model, decoded and checked.

    Args:
        path (str): The ``.onnx`` file.
        session (onnxruntime.InferenceSession, optional): A session of it,
            if one is open.

    Returns:
        dict: ``classes``, ``decision``, ``preprocessing``, ``outputs``,
        ``source`` (see :func:`~.onnx_export.model_metadata`).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a model written by ``tools/deployment/
            export_onnx.py`` of this version.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX model {path} does not exist')
    if session is None:
        session = _session(path)
    props = session.get_modelmeta().custom_metadata_map
    hint = ('export it with tools/deployment/export_onnx.py CONFIG '
            'CHECKPOINT --out FILE')
    if props.get('format') != json.dumps(METADATA_FORMAT):
        raise ValueError(f'{path} has no mmtwoway metadata (format '
                         f'"{METADATA_FORMAT}"); {hint}.')
    if props.get('format_version') != json.dumps(METADATA_VERSION):
        raise ValueError(f'{path} has metadata version '
                         f'{props.get("format_version")}; this mmtwoway '
                         f'reads version {METADATA_VERSION}: {hint} again.')
    try:
        return {key: json.loads(props[key]) for key in _KEYS}
    except (KeyError, ValueError) as err:
        raise ValueError(f'{path}: broken mmtwoway metadata ({err}); '
                         f'{hint}.') from err


def _session(path: str):
    """An onnxruntime session on the CPU, with a clear error."""
    ort = require('onnxruntime')
    try:
        return ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ValueError(f'onnxruntime cannot load {path}: {err}') from err


def graph_decision(meta: Dict[str, Any]) -> Optional[Decision]:
    """The decision that the graph's ``labels`` output applies, if any."""
    info = meta['decision']
    if info['rule'] == 'thresholds':
        thr = tuple(math.inf if t is None else t for t in info['thresholds'])
        return Decision('thresholds', thresholds=thr if len(thr) > 1 else
                        thr[0], classes=meta['classes'],
                        source=info['source'])
    if info['rule'] == 'relative':
        return Decision('relative', delta=info['delta'],
                        classes=meta['classes'], source=info['source'])
    return None


class OnnxClassifier:
    """An exported model in onnxruntime, with its labels and class names.

    Labels come from, in order: a calibration file (``calibration``,
    applied to the logits in Python), ``topk``, the graph's ``labels``
    output, else the top-1 class (uncalibrated), which is what the PyTorch
    path of ``tools/predict.py`` decides with the same arguments.

    Args:
        path (str): The ``.onnx`` file.
        calibration (str, optional):
            A calibration file that overrides the graph's rule.
        topk (int, optional): Decide the ``topk`` best classes instead.

    Raises:
        FileNotFoundError, ValueError: A missing or foreign model, or a
            calibration file of another class list.
    """

    def __init__(self,
                 path: str,
                 calibration: Optional[str] = None,
                 topk: Optional[int] = None) -> None:
        if calibration and topk:
            raise ValueError('give a calibration file or topk, not both')
        if topk is not None and topk < 1:
            raise ValueError(f'--topk must be >= 1, got {topk}')
        if not osp.isfile(path):
            raise FileNotFoundError(f'ONNX model {path} does not exist')
        self.path = path
        self.session = _session(path)
        self.meta = read_metadata(path, self.session)
        self.classes: List[str] = list(self.meta['classes'])
        self.preprocess = ImagePreprocessor(self.meta['preprocessing'])
        names = [o.name for o in self.session.get_outputs()]
        self.in_graph = graph_decision(self.meta)
        self.use_graph = False
        if calibration:
            self.decision = Decision.from_file(calibration, len(self.classes))
            self.decision.check_classes(self.classes, f'ONNX model {path}')
        elif topk:
            self.decision = Decision('topk', k=topk)
        elif self.in_graph is not None and LABELS in names:
            self.decision, self.use_graph = self.in_graph, True
        else:
            self.decision = Decision('topk', k=1)

    def describe(self) -> str:
        """How the labels are decided, in the PyTorch path's words."""
        if self.use_graph:
            return self.meta['decision']['description']
        return self.decision.describe()

    def run(self, batch) -> tuple:
        """``(logits, labels)`` of a preprocessed (N, 3, H, W) batch.

        Returns:
            tuple: float32 (N, C) logits and the (N, C) bool mask of the
            decided labels, both as torch tensors.
        """
        if self.use_graph:
            logits, labels = self.session.run([LOGITS, LABELS],
                                              {INPUT: batch})
            return torch.from_numpy(logits), torch.from_numpy(labels)
        logits = torch.from_numpy(
            self.session.run([LOGITS], {INPUT: batch})[0])
        return logits, self.decision(logits)

    def predict_readable(self, images: Sequence[str], batch_size: int = 8
                         ) -> Tuple[List[Dict], List[ImageReadError]]:
        """Each readable image's decided labels and all its logits.

        As :func:`mmtwoway.apis.predict_readable` on the PyTorch path: an
        unreadable file is set aside with the reason, and images of
        different sizes after the pipeline go in separate batches.

        Args:
            images (Sequence[str]): Image file paths.
            batch_size (int): Images per onnxruntime run.

        Returns:
            tuple: the results of the readable images, in order, as
            :func:`mmtwoway.apis.predict_images` gives them, and the errors
            of the unreadable ones.

        Raises:
            FileNotFoundError: An image does not exist.
        """
        results: Dict[int, Dict] = {}
        unreadable: List[ImageReadError] = []
        chunk = batch_size * _BATCHES_PER_CHUNK
        for start in range(0, len(images), chunk):
            by_shape: Dict[tuple, List[Tuple[int, np.ndarray]]] = {}
            for i in range(start, min(start + chunk, len(images))):
                try:
                    x = self.preprocess(images[i])
                except ImageReadError as err:
                    unreadable.append(err)
                    continue
                by_shape.setdefault(x.shape, []).append((i, x))
            for group in by_shape.values():
                for first in range(0, len(group), batch_size):
                    batch = group[first:first + batch_size]
                    logits, labels = self.run(np.ascontiguousarray(
                        np.stack([x for _, x in batch])))
                    for (i, _), scores, mask in zip(batch, logits, labels):
                        results[i] = prediction(
                            images[i], scores,
                            torch.where(mask)[0].tolist(), self.classes)
        return [results[i] for i in sorted(results)], unreadable

    def predict(self, images: Sequence[str],
                batch_size: int = 8) -> List[Dict]:
        """Each image's decided labels and all its logits.

        Args:
            images (Sequence[str]): Image file paths.
            batch_size (int): Images per onnxruntime run.

        Returns:
            list[dict]: As :func:`mmtwoway.apis.predict_images`.

        Raises:
            FileNotFoundError, ImageReadError: An image is missing or
                cannot be decoded.
        """
        results, unreadable = self.predict_readable(images, batch_size)
        if unreadable:
            raise unreadable[0]
        return results
