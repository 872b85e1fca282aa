from .coco import CocoMultiLabel

__all__ = ['CocoMultiLabel']
