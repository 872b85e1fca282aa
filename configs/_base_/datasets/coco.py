# MS-COCO 2014 multi-label classification: 80 classes, 82,081 train /
# 40,137 val images (those with at least one annotation), as in Table 6.
dataset_type = 'CocoMultiLabel'
data_root = 'data/coco'

data_preprocessor = dict(
    num_classes=80,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

# AlexNet PCA lighting noise in BGR order (images are loaded as BGR), the
# ImageNet eigen-decomposition scaled to 0-255 pixels.
lighting = dict(
    type='Lighting',
    eigval=[55.4625, 4.7940, 1.1475],
    eigvec=[[-0.5836, -0.6948, 0.4203], [-0.5808, -0.0045, -0.8140],
            [-0.5675, 0.7192, 0.4009]],
    alphastd=0.1,
    to_rgb=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # Antialiased when shrinking (cv2 INTER_AREA), as the authors'
    # torchvision RandomResizedCrop / Resize on PIL images are.
    dict(
        type='AntialiasedRandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.08, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    # Lighting casts its result back to the input dtype without clipping:
    # on uint8 a dark pixel minus noise wraps around to ~250. Go to float32
    # first, as the authors' code applies lighting to float tensors.
    dict(type='PILToNumpy', dtype='float32'),
    lighting,
    dict(type='PackInputs'),
]

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AntialiasedResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# 128 images per GPU: on 4 GPUs the paper's batch of 512 in buckets of 128.
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    # One stacked batch per step: one copy to the GPU and batch-wide
    # normalisation there (mmengine's default keeps a list of images).
    collate_fn=dict(type='default_collate'),
    # Full batches only, so every bucket of the two-way loss has M images.
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2014.json',
        data_prefix=dict(img_path='train2014'),
        pipeline=train_pipeline),
)

val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2014.json',
        data_prefix=dict(img_path='val2014'),
        test_mode=True,
        pipeline=test_pipeline),
)
# mAP@class / mAP@sample, and CP/CR/CF1/OP/OR/OF1 of the head's decision
# (top-1 until a calibration file from tools/calibrate.py is set).
val_evaluator = [dict(type='MultiLabelMAP'), dict(type='MultiLabelF1')]

test_dataloader = val_dataloader
test_evaluator = val_evaluator
