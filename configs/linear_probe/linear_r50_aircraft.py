# Table 8, Aircraft: linear probe of a frozen ImageNet ResNet-50 on
# FGVCAircraft (100 classes), trained on "trainval", top-1 on "test".
# Paper (ASL / softmax / ours): 27.42 / 39.18 / 44.01.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets aircraft
# Variant level (100 classes): data/images_variant_{trainval,test}.txt.
_base_ = ['./_base_/linear_r50.py']

num_classes = 100
data_root = 'data/fgvc-aircraft-2013b'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='FGVCAircraft', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='FGVCAircraft', data_root=data_root, split='test'))
test_dataloader = val_dataloader
