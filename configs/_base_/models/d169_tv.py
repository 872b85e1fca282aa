# DenseNet-169 with torchvision's IMAGENET1K_V1 weights (75.60 top-1), as the
# authors initialised it; otherwise identical to d169.py. The file is
# renamed to mmpretrain's keys while loading (from-torchvision://).
# Offline: --cfg-options model.backbone.init_cfg.checkpoint=from-torchvision:///path/to/densenet169-b2777c0a.pth  # noqa: E501
_base_ = ['./d169.py']
checkpoint = 'from-torchvision://https://download.pytorch.org/models/densenet169-b2777c0a.pth'  # noqa: E501
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
