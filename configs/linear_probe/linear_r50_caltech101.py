# Table 8, Caltech101: linear probe of a frozen ImageNet ResNet-50 on
# Caltech101 (102 classes), trained on "train", top-1 on "test".
# Paper (ASL / softmax / ours): 85.22 / 88.17 / 88.36.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets caltech101
# Caltech-101 has no official split: meta/{train,test}.txt are OpenMMLab's
# (https://download.openmmlab.com/mmpretrain/datasets/caltech_meta.zip).
_base_ = ['./_base_/linear_r50.py']

num_classes = 102
data_root = 'data/caltech-101'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='Caltech101', data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type='Caltech101', data_root=data_root, split='test'))
test_dataloader = val_dataloader
