"""ONNX export and onnxruntime inference; import explicitly.

Needs the ``deploy`` extra (``pip install -e ".[deploy]"``), imported lazily.
"""
from .onnx_export import ExportedClassifier, export_onnx, model_metadata
from .onnx_runtime import OnnxClassifier, read_metadata
from .preprocessing import ImagePreprocessor, describe_input, input_spec

__all__ = [
    'ExportedClassifier', 'ImagePreprocessor', 'OnnxClassifier',
    'describe_input', 'export_onnx', 'input_spec', 'model_metadata',
    'read_metadata'
]
