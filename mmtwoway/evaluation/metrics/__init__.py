from .multilabel_f1 import MultiLabelF1
from .multilabel_map import MultiLabelMAP

__all__ = ['MultiLabelMAP', 'MultiLabelF1']
