# ResNet-50 with torchvision's IMAGENET1K_V1 weights (76.13 top-1), as the
# authors initialised it; otherwise identical to r50.py. The file is
# renamed to mmpretrain's keys while loading (from-torchvision://).
# Offline: --cfg-options model.backbone.init_cfg.checkpoint=from-torchvision:///path/to/resnet50-0676ba61.pth  # noqa: E501
_base_ = ['./r50.py']
checkpoint = 'from-torchvision://https://download.pytorch.org/models/resnet50-0676ba61.pth'  # noqa: E501
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
