from .crop_instance import CropInstance
from .decode import DecodeRandomResizedCrop, DecodeResizeCenterCrop
from .loading import (ImageReadError, LoadCheckedImageFromFile,
                      decode_image, read_image)

__all__ = [
    'CropInstance', 'DecodeRandomResizedCrop', 'DecodeResizeCenterCrop',
    'ImageReadError', 'LoadCheckedImageFromFile', 'decode_image', 'read_image'
]
