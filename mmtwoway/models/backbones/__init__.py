from .torchvision_regnet import TorchvisionRegNet
from .torchvision_weights import convert_torchvision_state_dict

__all__ = ['TorchvisionRegNet', 'convert_torchvision_state_dict']
