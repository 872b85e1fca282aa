# ResNet-50 initialised from mmpretrain's ImageNet checkpoint (76.55 top-1),
# global average pooling, and the two-way head (Tp = 4, Tn = 1). The Table 7
# cells inherit r50_tv.py (torchvision's weights, as the authors); this
# base keeps mmpretrain's weights as an option.
# Offline: set `checkpoint` to a local .pth file.
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TwoWayLinearClsHead',
        num_classes=80,
        in_channels=2048,
        loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0, bucket_size=128),
        # A fresh nn.Linear as the authors' script makes it: PyTorch's
        # default init (Kaiming-uniform weights, uniform bias).
        init_cfg=dict(type='TorchDefault', layer='Linear')),
)
