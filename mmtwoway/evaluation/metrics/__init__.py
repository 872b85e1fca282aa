from .multilabel_map import MultiLabelMAP

__all__ = ['MultiLabelMAP']
