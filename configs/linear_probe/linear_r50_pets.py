# Table 8, Pets: linear probe of a frozen ImageNet ResNet-50 on
# OxfordIIITPet (37 classes), trained on "trainval", top-1 on "test".
# Paper (ASL / softmax / ours): 91.33 / 92.12 / 92.18.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets pets
_base_ = ['./_base_/linear_r50.py']

num_classes = 37
data_root = 'data/Oxford-IIIT_Pets'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='OxfordIIITPet', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='OxfordIIITPet', data_root=data_root, split='test'))
test_dataloader = val_dataloader
