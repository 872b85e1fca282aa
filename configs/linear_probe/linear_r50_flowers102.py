# Table 8, Flower: linear probe of a frozen ImageNet ResNet-50 on
# Flowers102 (102 classes), trained on "trainval", top-1 on "test".
# Paper (ASL / softmax / ours): 75.88 / 85.75 / 87.72.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets flowers102
# setid.mat's trnid + valid for training, tstid for testing.
_base_ = ['./_base_/linear_r50.py']

num_classes = 102
data_root = 'data/Flowers102'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='Flowers102', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='Flowers102', data_root=data_root, split='test'))
test_dataloader = val_dataloader
