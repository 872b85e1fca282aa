from .functional import average_precision, mean_ap
from .metrics import MultiLabelMAP

__all__ = ['average_precision', 'mean_ap', 'MultiLabelMAP']
