from .two_way_head import TwoWayLinearClsHead

__all__ = ['TwoWayLinearClsHead']
