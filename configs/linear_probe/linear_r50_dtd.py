# Table 8, DTD: linear probe of a frozen ImageNet ResNet-50 on
# DTD (47 classes), trained on "trainval", top-1 on "test".
# Paper (ASL / softmax / ours): 64.89 / 70.85 / 72.71.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets dtd
# DTD's split 1 as stored in imdb/imdb.mat (train + val for training).
_base_ = ['./_base_/linear_r50.py']

num_classes = 47
data_root = 'data/dtd'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='DTD', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='DTD', data_root=data_root, split='test'))
test_dataloader = val_dataloader
