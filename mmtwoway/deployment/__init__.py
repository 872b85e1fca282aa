"""Deployment: ONNX export of a trained model and onnxruntime inference.

Import explicitly (``from mmtwoway.deployment import export_onnx``); needs
the ``deploy`` extra (``pip install -e ".[deploy]"``: onnx, onnxscript,
onnxruntime), imported only when a function runs.
"""
from .onnx_export import ExportedClassifier, export_onnx, model_metadata
from .onnx_runtime import OnnxClassifier, read_metadata
from .preprocessing import ImagePreprocessor, describe_input, input_spec

__all__ = [
    'ExportedClassifier', 'ImagePreprocessor', 'OnnxClassifier',
    'describe_input', 'export_onnx', 'input_spec', 'model_metadata',
    'read_metadata'
]
