from .asymmetric_loss import OfficialAsymmetricLoss
from .bucket_loss import BucketLoss
from .freq_bce_loss import FrequencyWeightedBCELoss, frequency_weights
from .ignore_label_loss import (ElementwiseLabelledLoss, IgnoreLabelLoss,
                                reduce_labelled)
from .multi_similarity_loss import MultiSimilarityLoss
from .softmax_loss import NormalizedSoftmaxLoss
from .two_way_loss import TwoWayLoss, two_way_loss

__all__ = [
    'TwoWayLoss', 'two_way_loss', 'BucketLoss', 'NormalizedSoftmaxLoss',
    'MultiSimilarityLoss', 'ElementwiseLabelledLoss', 'IgnoreLabelLoss',
    'reduce_labelled', 'FrequencyWeightedBCELoss', 'frequency_weights',
    'OfficialAsymmetricLoss'
]
