from .crop_instance import CropInstance
from .loading import (ImageReadError, LoadImageFromFile, decode_image,
                      read_image)

__all__ = [
    'CropInstance', 'ImageReadError', 'LoadImageFromFile', 'decode_image',
    'read_image'
]
