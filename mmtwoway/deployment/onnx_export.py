"""Export a trained model, with its calibrated decision, to ONNX.

Inputs, outputs and metadata of the graph: docs/deployment.md.
"""
import json
import math
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..evaluation.decision import Decision
from .preprocessing import input_spec

METADATA_FORMAT = 'mmtwoway-onnx'
METADATA_VERSION = 1
INPUT, LOGITS, LABELS = 'input', 'logits', 'labels'
# Spatial size of the example input when the pipeline does not fix one
# (the graph then takes any height and width).
_EXAMPLE_SIZE = (224, 224)


def require(module: str):
    """Import an optional deployment dependency, saying how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f'{module} is needed to export or run ONNX models: pip install '
            f'-e ".[deploy]" (onnx, onnxscript, onnxruntime).') from err


class ExportedClassifier(nn.Module):
    """A classifier from the preprocessed image to logits (and labels).

    Args:
        model (nn.Module):
            An mmpretrain ``ImageClassifier`` (backbone, neck, head).
        decision (Decision, optional): A thresholds or relative rule,
            computed in the graph; None (or top-k) for logits only.
    """

    def __init__(self, model: nn.Module,
                 decision: Optional[Decision] = None) -> None:
        super().__init__()
        self.model = model
        self.rule = decision.rule if decision is not None else 'topk'
        num_classes = model.head.num_classes
        if self.rule == 'thresholds':
            thr = torch.as_tensor(decision.thresholds, dtype=torch.float64)
            # One threshold for all classes becomes C equal ones.
            self.register_buffer('thresholds',
                                 thr.expand(num_classes).clone())
        elif self.rule == 'relative':
            self.register_buffer(
                'delta', torch.tensor(float(decision.delta),
                                      dtype=torch.float64))

    def forward(self, x: torch.Tensor):
        logits = self.model.head(self.model.extract_feat(x))
        if self.rule == 'topk':
            return logits
        # float64, as mmtwoway.evaluation.decision: a threshold
        # lies halfway between two float32 scores.
        scores = logits.double()
        if self.rule == 'thresholds':
            labels = scores >= self.thresholds
        else:
            gaps = scores.amax(dim=1, keepdim=True) - scores
            labels = gaps <= self.delta
        return logits, labels


def decision_metadata(decision: Optional[Decision]) -> Dict[str, Any]:
    """The ``decision`` metadata: the rule the ``labels`` output applies.

    Args:
        decision (Decision, optional): The model's decision, or None.

    Returns:
        dict: ``rule`` ('thresholds', 'relative', or 'none' when the graph
        has no ``labels``), ``thresholds`` (C values, null = never),
        ``delta``, ``source`` (the calibration file) and ``description``.
    """
    if decision is None or decision.rule == 'topk':
        return dict(
            rule='none', thresholds=None, delta=None, source=None,
            description='logits only: no calibrated decision (run '
            'tools/calibrate.py and export with --calibration FILE)')
    thresholds = None
    if decision.rule == 'thresholds':
        thr = decision.thresholds
        thr = thr if isinstance(thr, tuple) else (float(thr), )
        thresholds = [None if math.isinf(t) else t for t in thr]
    return dict(
        rule=decision.rule,
        thresholds=thresholds,
        delta=decision.delta if decision.rule == 'relative' else None,
        source=decision.source,
        description=decision.describe())


def model_metadata(classes: Sequence[str], decision: Optional[Decision],
                   preprocessing: Dict[str, Any],
                   source: Dict[str, Any]) -> Dict[str, str]:
    """The metadata properties of the exported model (JSON strings).

    Keys: ``format`` / ``format_version``; ``classes`` (C names in index
    order); ``decision`` (:func:`decision_metadata`); ``preprocessing``
    (:func:`~mmtwoway.deployment.preprocessing.input_spec`); ``outputs``
    (name -> meaning); ``source`` (config, checkpoint, head, mmtwoway
    version).
    """
    outputs = {LOGITS: 'float32 (N, C): the head\'s raw logits (no sigmoid)'}
    if decision is not None and decision.rule != 'topk':
        outputs[LABELS] = ('bool (N, C): the labels of the decision rule, '
                           'computed in the graph')
    values = dict(
        format=METADATA_FORMAT,
        format_version=METADATA_VERSION,
        classes=list(classes),
        decision=decision_metadata(decision),
        preprocessing=preprocessing,
        outputs=outputs,
        source=source)
    return {
        key: json.dumps(value, allow_nan=False)
        for key, value in values.items()
    }


def _example_input(spec: Dict[str, Any]) -> Tuple[torch.Tensor, dict]:
    """An example input and the dynamic dimensions of the graph."""
    from torch.export import Dim
    dims = {0: Dim('batch', min=1)}
    size = spec['size']
    if size is None:
        size = _EXAMPLE_SIZE
        dims.update({2: Dim('height', min=8), 3: Dim('width', min=8)})
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(2, 3, *size, generator=gen)
    return example, dims


def export_onnx(model: nn.Module,
                out: str,
                classes: Sequence[str],
                source: Optional[Dict[str, Any]] = None,
                opset: Optional[int] = None) -> Dict[str, Any]:
    """Write ``model`` (from :func:`mmtwoway.apis.load_model`) as ONNX.

    The head's decision is put in the graph when it is a thresholds or
    relative rule. The model is moved to the CPU (in place) to export. The
    file is checked with ``onnx.checker`` and the graph run once by
    onnxruntime against PyTorch on a random input.

    Args:
        model (nn.Module): A loaded classifier, with ``_config`` (for the test
            pipeline).
        out (str): The ``.onnx`` file to write (its folder is created).
        classes (Sequence[str]): The C class names.
        source (Dict[str, Any], optional):
            What the model was exported from (config, checkpoint ...),
            stored in the metadata.
        opset (int, optional): The ONNX opset; None for the exporter's default.

    Returns:
        dict: ``out``, ``outputs``, ``input`` (one line: which tensor),
        ``decision`` (one line), ``opset`` and ``max_abs_diff`` (onnxruntime
        vs PyTorch logits on the random check input).

    Raises:
        ValueError: The model cannot be described or exported, or
            onnxruntime disagrees with PyTorch.
    """
    onnx = require('onnx')
    require('onnxscript')
    from .preprocessing import describe_input

    cfg = getattr(model, '_config', None)
    loader = cfg.get('test_dataloader') if cfg is not None else None
    if not loader or 'pipeline' not in loader.get('dataset', {}):
        raise ValueError('the config has no test_dataloader.dataset.pipeline,'
                         ' which defines the input of the exported model.')
    spec = input_spec(model, loader['dataset']['pipeline'], INPUT)
    if len(classes) != model.head.num_classes:
        raise ValueError(f'{len(classes)} class names for a head of '
                         f'{model.head.num_classes} classes')
    decision = getattr(model.head, 'decision', None)
    module = ExportedClassifier(model.cpu().eval(), decision).eval()
    outputs = [LOGITS] if module.rule == 'topk' else [LOGITS, LABELS]
    example, dims = _example_input(spec)
    kwargs = dict(opset_version=opset) if opset else {}
    program = torch.onnx.export(
        module, (example, ),
        dynamo=True,
        input_names=[INPUT],
        output_names=outputs,
        dynamic_shapes={'x': dims},
        verbose=False,
        **kwargs)
    proto = program.model_proto
    meta = model_metadata(classes, decision, spec, dict(
        source or {}, head=type(model.head).__name__))
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = (f'mmtwoway classifier. Input {describe_input(spec)}.'
                        f' Outputs: {", ".join(outputs)}.')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    onnx.save(proto, out)
    onnx.checker.check_model(out)
    diff = _check_with_onnxruntime(module, out, example)
    return dict(
        out=out,
        outputs=outputs,
        input=describe_input(spec),
        decision=json.loads(meta['decision'])['description'],
        opset=next(o.version for o in proto.opset_import if o.domain == ''),
        max_abs_diff=diff)


def _check_with_onnxruntime(module: nn.Module, path: str,
                            example: torch.Tensor) -> float:
    """Max abs difference of the logits of onnxruntime and PyTorch."""
    ort = require('onnxruntime')
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        expected = module(example)
    expected = expected[0] if isinstance(expected, tuple) else expected
    got = session.run([LOGITS], {INPUT: example.numpy()})[0]
    diff = float(np.abs(got - expected.numpy()).max())
    scale = max(1.0, float(expected.abs().max()))
    if not diff <= 1e-4 * scale:
        raise ValueError(
            f'{path}: onnxruntime\'s logits differ from PyTorch\'s by '
            f'{diff:.3g} (logits up to {scale:.3g}) on the check input; '
            'the export is wrong for this model.')
    return diff
