# Table 8, Food101: linear probe of a frozen ImageNet ResNet-50 on
# Food101 (101 classes), trained on "train", top-1 on "test".
# Paper (ASL / softmax / ours): 57.08 / 65.44 / 66.83.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets food101
_base_ = ['./_base_/linear_r50.py']

num_classes = 101
data_root = 'data/food-101'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='Food101', data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type='Food101', data_root=data_root, split='test'))
test_dataloader = val_dataloader
