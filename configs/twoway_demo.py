# The bundled CPU demo: multi-label canvases of scikit-learn's real
# handwritten digits (labels = the digits present), in the COCO layout.
#   python tools/misc/make_demo_data.py data/demo
#   python tools/train.py configs/twoway_demo.py
# A small CIFAR-style ResNet-18 (16 base channels) trained from scratch with
# the two-way loss; about a minute on 2 CPU cores.
_base_ = ['./_base_/default_runtime.py']

data_root = 'data/demo'
num_classes = 10

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TwoWayLinearClsHead',
        num_classes=num_classes,
        in_channels=128,
        loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0)),
)

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)

pipeline = [dict(type='LoadCheckedImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CocoMultiLabel',
        data_root=data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img_path='train'),
        pipeline=pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoMultiLabel',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img_path='val'),
        test_mode=True,
        pipeline=pipeline))
val_evaluator = [dict(type='MultiLabelMAP'), dict(type='MultiLabelF1')]
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = dict(
    type='CosineAnnealingLR',
    T_max=16,
    by_epoch=True,
    convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=16, val_interval=4)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=1))
