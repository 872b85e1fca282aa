from .average_precision import average_precision, mean_ap

__all__ = ['average_precision', 'mean_ap']
