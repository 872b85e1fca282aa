from . import transforms  # noqa: F401  (registers the transforms)
from .coco import CocoMultiLabel
from .csv_dataset import MultiLabelCsvDataset
from .instance import InstanceDataset
from .openimages import OpenImagesMultiLabel, OpenImagesRotate
from .vaw import VAW
from .vispr import VISPR
from .voc import VOCMultiLabel
from .wider import WIDERAttribute

__all__ = [
    'CocoMultiLabel', 'InstanceDataset', 'MultiLabelCsvDataset',
    'OpenImagesMultiLabel', 'OpenImagesRotate', 'VAW',
    'VISPR', 'VOCMultiLabel', 'WIDERAttribute'
]
