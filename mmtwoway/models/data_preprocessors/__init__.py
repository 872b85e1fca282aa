from .color_augment import ColorAugmentDataPreprocessor
from .device_jpeg import DeviceJpegDataPreprocessor

__all__ = ['ColorAugmentDataPreprocessor', 'DeviceJpegDataPreprocessor']
