# Linear probe of an ImageNet-trained ResNet-50 (Table 8): the backbone is
# a frozen feature extractor and only a linear classifier on its 2048-d
# globally pooled features is trained. The leaf configs choose the dataset.
#
# The paper's probe details are in its supplementary material, which we do
# not have. The protocol here is mmpretrain's linear-evaluation recipe for
# ResNet-50 (configs/_base_/schedules/imagenet_sgd_coslr_100e.py, as in its
# */benchmarks/resnet50_*-linear-coslr-100e_in1k.py):
#   * backbone frozen (frozen_stages=4: no gradients, batch norms in eval
#     mode with ImageNet statistics), one Linear + softmax cross-entropy;
#   * train: RandomResizedCrop 224 + horizontal flip; test: short edge 256
#     + CenterCrop 224; ImageNet mean / std;
#   * SGD momentum 0.9, weight decay 1e-6, lr 0.3 for a batch of 256,
#     cosine decay (per iteration) to 0 over 100 epochs, no warm-up;
#   * train on the official train(+val) split, report top-1 on the test
#     split once, after the last epoch; no hyper-parameter search.
#
# tools/linear_probe.py sets `checkpoint`; by default it is the last
# checkpoint of configs/imagenet/twoway_in1k_r50.py.
_base_ = [
    '../../_base_/models/r50.py',
    '../../_base_/default_runtime.py',
]

checkpoint = 'work_dirs/twoway_in1k_r50/epoch_90.pth'
model = dict(
    backbone=dict(
        frozen_stages=4,
        norm_eval=True,
        init_cfg=dict(checkpoint=checkpoint)),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)

data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

# JPEGs are decoded by libjpeg-turbo (torchvision.io), the files of SUN397
# that are not really JPEGs by Pillow, which recognises them by their
# header. The crop is drawn from the header and a JPEG decoded at reduced
# size where the crop keeps at least 224 pixels per side (see coco.py).
train_pipeline = [
    dict(type='DecodeRandomResizedCrop', scale=224, flip_prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='DecodeResizeCenterCrop', resize=256, crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(
    # tools/train.py switches to OptimWrapper on machines without CUDA.
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='SGD', lr=0.3, momentum=0.9, weight_decay=1e-6))
param_scheduler = dict(
    type='CosineAnnealingLR',
    T_max=100,
    eta_min=0.0,
    by_epoch=True,
    begin=0,
    end=100,
    convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=100)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256, enable=False)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=1, save_best=None))
