# MS-COCO 2014 multi-label classification: 80 classes, 82,081 train /
# 40,137 val images (those with at least one annotation), as in Table 6.
dataset_type = 'CocoMultiLabel'
data_root = 'data/coco'

# The CPU workers do the geometry on uint8 pixels: the crop is drawn from
# the JPEG header as torchvision's RandomResizedCrop draws it, the JPEG is
# decoded at reduced size where the crop keeps at least 224 pixels per
# side, then resized (bilinear, antialiased, as torchvision on PIL images)
# and flipped. The photometric part runs on the batch on the device:
# ColorJitter(0.4, 0.4, 0.4) (per image, in a random order), AlexNet PCA
# lighting (0.1), ImageNet mean / std; validation only normalises.
data_preprocessor = dict(
    type='ColorAugmentDataPreprocessor',
    num_classes=80,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    # The workers give BGR, as mmcv's LoadImageFromFile.
    to_rgb=True,
    color_jitter=dict(brightness=0.4, contrast=0.4, saturation=0.4),
    # The ImageNet eigen-decomposition of the authors' code (RGB rows),
    # scaled to 0-255 pixels.
    lighting=dict(
        eigval=[55.4625, 4.7940, 1.1475],
        eigvec=[[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                [-0.5836, -0.6948, 0.4203]],
        alphastd=0.1),
)

train_pipeline = [
    dict(type='DecodeRandomResizedCrop', scale=224,
         crop_ratio_range=(0.08, 1.0), flip_prob=0.5),
    dict(type='PackInputs'),
]

test_pipeline = [
    dict(type='DecodeResizeCenterCrop', resize=256, crop_size=224),
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
