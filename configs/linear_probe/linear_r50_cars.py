# Table 8, Car: linear probe of a frozen ImageNet ResNet-50 on
# StanfordCars (196 classes), trained on "train", top-1 on "test".
# Paper (ASL / softmax / ours): 32.99 / 45.13 / 46.50.
#   python tools/linear_probe.py IMAGENET_CKPT --datasets cars
# Either layout of mmpretrain's StanfordCars: car_ims/ + cars_annos.mat, or
# cars_{train,test}/ + devkit/.
_base_ = ['./_base_/linear_r50.py']

num_classes = 196
data_root = 'data/Stanford_Cars'
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='StanfordCars', data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type='StanfordCars', data_root=data_root, split='test'))
test_dataloader = val_dataloader
