from .crop_instance import CropInstance
from .decode import DecodeRandomResizedCrop, DecodeResizeCenterCrop

__all__ = ['CropInstance', 'DecodeRandomResizedCrop', 'DecodeResizeCenterCrop']
