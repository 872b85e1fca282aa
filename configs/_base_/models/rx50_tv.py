# ResNeXt-50 (32x4d) with torchvision's IMAGENET1K_V1 weights (77.62
# top-1), as the authors initialised it; otherwise identical to rx50.py. The
# file is renamed to mmpretrain's keys while loading (from-torchvision://).
# Offline: --cfg-options model.backbone.init_cfg.checkpoint=from-torchvision:///path/to/resnext50_32x4d-7cdf4587.pth  # noqa: E501
_base_ = ['./rx50.py']
checkpoint = 'from-torchvision://https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth'  # noqa: E501
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
