from .antialias import (AntialiasedRandomResizedCrop, AntialiasedResizeEdge,
                        antialiased_resize)
from .crop_instance import CropInstance

__all__ = [
    'AntialiasedRandomResizedCrop', 'AntialiasedResizeEdge', 'CropInstance',
    'antialiased_resize'
]
