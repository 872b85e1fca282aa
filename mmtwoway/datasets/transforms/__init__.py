from .crop_instance import CropInstance

__all__ = ['CropInstance']
