from .antialias import (AntialiasedRandomResizedCrop, AntialiasedResizeEdge,
                        antialiased_resize)
from .crop_instance import CropInstance
from .decode import DecodeRandomResizedCrop, DecodeResizeCenterCrop
from .loading import (ImageReadError, LoadCheckedImageFromFile,
                      decode_image, read_image)

__all__ = [
    'AntialiasedRandomResizedCrop', 'AntialiasedResizeEdge', 'CropInstance',
    'DecodeRandomResizedCrop', 'DecodeResizeCenterCrop', 'ImageReadError',
    'LoadCheckedImageFromFile', 'antialiased_resize', 'decode_image',
    'read_image'
]
