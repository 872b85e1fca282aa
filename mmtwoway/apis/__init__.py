"""Inference helpers, imported explicitly (``import mmtwoway`` skips them)."""
from .inference import predict_images, predict_readable, prediction
from .model import load_model, model_classes

__all__ = [
    'load_model', 'model_classes', 'predict_images', 'predict_readable',
    'prediction'
]
