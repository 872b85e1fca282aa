# ImageNet-1k single-label training of ResNet-50 from scratch (Sec. 4.4,
# Table 8): "the same protocol as Sec. 4.1 except that the model is trained
# from scratch over 90 epochs with an initial learning rate of 0.1".
# The leaf configs (twoway / softmax / asl) only choose the head and loss.
#
# Inherited unchanged from the multi-label protocol: the augmentation
# (RandomResizedCrop 224, flip, ColorJitter 0.4, PCA lighting 0.1, the last
# two in the data preprocessor; test short edge 256 + CenterCrop 224), SGD
# Nesterov momentum 0.9, weight decay 1e-4 on every parameter, cosine decay
# stepped every iteration without warm-up, AMP, batch 512 = 4 GPUs x 128,
# auto_scale_lr base 512.
_base_ = [
    '../../_base_/models/r50.py',
    '../../_base_/datasets/coco.py',
    '../../_base_/schedules/multilabel_40e.py',
    '../../_base_/default_runtime.py',
]

dataset_type = 'ImageNet'
data_root = 'data/imagenet'
data_preprocessor = dict(num_classes=1000)

# ResNet-50 of the multi-label configs, randomly initialised as
# torchvision's resnet50() that the authors' code builds on: Kaiming-normal
# convolutions, unit batch-norm scales, no zero-init of residual branches,
# and PyTorch's default nn.Linear init for the classifier (TorchDefault).
# The leaf configs add the head type and loss.
checkpoint = None  # r50.py's ImageNet weights are not used
model = dict(
    backbone=dict(
        zero_init_residual=False,
        init_cfg=[
            dict(type='Kaiming', layer=['Conv2d']),
            dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
        ]),
    head=dict(
        _delete_=True,
        num_classes=1000,
        in_channels=2048,
        init_cfg=dict(type='TorchDefault', layer='Linear')),
)

# mmpretrain's ImageNet: data/imagenet/{train,val}/<wnid>/*.JPEG, or the
# flat layout with meta/{train,val}.txt ("path label" lines).
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
# Two-way logits, softmax logits and ASL sigmoids all rank classes, which is
# all top-k accuracy needs.
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# One learning rate for every parameter: from scratch there is no
# pretrained backbone to protect with the 10x smaller rate.
optim_wrapper = dict(optimizer=dict(lr=0.1), paramwise_cfg=None)
param_scheduler = dict(T_max=90, end=90)
train_cfg = dict(max_epochs=90, val_interval=1)

default_hooks = dict(checkpoint=dict(save_best='accuracy/top1'))
