from .crop_instance import CropInstance
from .decode import DecodeRandomResizedCrop, DecodeResizeCenterCrop
from .loading import (ImageReadError, LoadImageFromFile, decode_image,
                      read_image)

__all__ = [
    'CropInstance', 'DecodeRandomResizedCrop', 'DecodeResizeCenterCrop',
    'ImageReadError', 'LoadImageFromFile', 'decode_image', 'read_image'
]
