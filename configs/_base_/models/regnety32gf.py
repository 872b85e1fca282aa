# RegNetY-32GF (torchvision's, with SE blocks; mmpretrain has RegNetX only)
# initialised from torchvision's IMAGENET1K_V1 weights (80.88 top-1), global
# average pooling, and the two-way head (Tp = 4, Tn = 1, buckets of M = 128).
# `from-torchvision://` converts the torchvision file to mmpretrain's
# `backbone.` key names while loading (mmtwoway.models.backbones).
# Offline: --cfg-options model.backbone.init_cfg.checkpoint=from-torchvision:///path/to/regnet_y_32gf-4dee3f7a.pth  # noqa: E501
checkpoint = 'from-torchvision://https://download.pytorch.org/models/regnet_y_32gf-4dee3f7a.pth'  # noqa: E501
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='TorchvisionRegNet',
        arch='regnet_y_32gf',
        out_indices=(3, ),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TwoWayLinearClsHead',
        num_classes=80,
        in_channels=3712,
        loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0, bucket_size=128),
        # A fresh nn.Linear as the authors' script makes it: PyTorch's
        # default init (Kaiming-uniform weights, uniform bias).
        init_cfg=dict(type='TorchDefault', layer='Linear')),
)
