# Table 8, CUB: linear probe of a frozen ImageNet ResNet-50 on
# CUB (200 classes), trained on "train", top-1 on "test".
# Paper (ASL / softmax / ours): 55.26 / 63.15 / 65.96.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets cub
_base_ = ['./_base_/linear_r50.py']

num_classes = 200
data_root = 'data/CUB_200_2011'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='CUB', data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type='CUB', data_root=data_root, split='test'))
test_dataloader = val_dataloader
