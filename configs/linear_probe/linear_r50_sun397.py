# Table 8, SUN: linear probe of a frozen ImageNet ResNet-50 on
# SUN397 (397 classes), trained on "train", top-1 on "test".
# Paper (ASL / softmax / ours): 53.38 / 58.85 / 59.49.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets sun397
# Partition 1 (Partitions/Training_01.txt, Testing_01.txt); some files are
# not JPEGs despite their name, hence the pillow decoder of the base.
_base_ = ['./_base_/linear_r50.py']

num_classes = 397
data_root = 'data/SUN397'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='SUN397', data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type='SUN397', data_root=data_root, split='test'))
test_dataloader = val_dataloader
