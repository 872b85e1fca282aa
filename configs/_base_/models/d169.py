# DenseNet-169 initialised from mmpretrain's ImageNet checkpoint (76.08
# top-1), global average pooling, and the two-way head (Tp = 4, Tn = 1,
# buckets of M = 128). The Table 7 cells inherit d169_tv.py (torchvision's
# weights, as the authors); this base keeps mmpretrain's weights as an
# option.
# Offline: --cfg-options model.backbone.init_cfg.checkpoint=/path/to/x.pth
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/densenet/densenet169_4xb256_in1k_20220426-a2889902.pth'  # noqa: E501
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='DenseNet',
        arch='169',
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TwoWayLinearClsHead',
        num_classes=80,
        in_channels=1664,
        loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0, bucket_size=128),
        # A fresh nn.Linear as the authors' script makes it: PyTorch's
        # default init (Kaiming-uniform weights, uniform bias).
        init_cfg=dict(type='TorchDefault', layer='Linear')),
)
