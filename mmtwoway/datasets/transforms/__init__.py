from .antialias import (AntialiasedRandomResizedCrop, AntialiasedResizeEdge,
                        antialiased_resize)
from .crop_instance import CropInstance
from .loading import (ImageReadError, LoadImageFromFile, decode_image,
                      read_image)

__all__ = [
    'AntialiasedRandomResizedCrop', 'AntialiasedResizeEdge', 'CropInstance',
    'ImageReadError', 'LoadImageFromFile', 'antialiased_resize',
    'decode_image', 'read_image'
]
