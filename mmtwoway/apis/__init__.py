"""Inference helpers (import explicitly: ``from mmtwoway.apis import ...``).

Not imported by ``import mmtwoway``: the training path does not need them.
"""
from .inference import predict_images, predict_readable, prediction
from .model import load_model, model_classes

__all__ = [
    'load_model', 'model_classes', 'predict_images', 'predict_readable',
    'prediction'
]
