from .two_way_loss import TwoWayLoss, two_way_loss

__all__ = ['TwoWayLoss', 'two_way_loss']
