# Two-way loss, ResNet-50, on YOUR OWN multi-label data: a template.
# Copy it and set the values under "Your data"; nothing else is needed.
#
# Each split is a CSV file with a header row (docs/own_data.md):
#
#   image,labels,negatives
#   photos/0001.jpg,sea|sky|person,dog
#   photos/0002.jpg,dog,sea|sky
#
# `image` is relative to `image_folder`; `labels` are the positive classes
# separated by "|". The optional `negatives` column lists the classes known
# to be absent, and every class in neither column is then IGNORED (unknown:
# no loss, left out of mAP). Use an `ignored` column instead to list the
# unknown classes when all others are absent, or neither column when every
# image is fully labelled. Other columns are kept as sample metadata.
#
#   python tools/misc/dataset_stats.py configs/custom/twoway_custom_r50.py
#   python tools/train.py configs/custom/twoway_custom_r50.py
_base_ = [
    '../_base_/models/r50.py',  # ImageNet-pretrained ResNet-50, two-way head
    '../_base_/datasets/coco.py',  # the paper's pipelines and evaluators
    '../_base_/schedules/multilabel_40e.py',  # the paper's 40-epoch schedule
    '../_base_/default_runtime.py',
]

# ---- Your data -------------------------------------------------------------
data_root = 'data/custom'  # the folder the four paths below are relative to
train_csv = 'train.csv'
val_csv = 'val.csv'  # used for validation, testing and tools/calibrate.py
# A text file with one class name per line (class index = line order), or a
# list ['cat', 'dog', ...]. None takes the sorted names found in train_csv
# for every split (a val_csv class that train_csv lacks is then an error).
classes = 'classes.txt'
num_classes = 20  # the number of classes (checked before training starts)
image_folder = ''  # where the CSV's image paths start ('' = data_root)
# -----------------------------------------------------------------------------

model = dict(
    head=dict(
        num_classes=num_classes,
        # Each GPU's batch is one bucket of the loss (the paper's is 128
        # images: set bucket_size=128 with 4 GPUs x 32 or 1 GPU x 128).
        loss=dict(bucket_size=None)))
data_preprocessor = dict(num_classes=num_classes)

train_dataloader = dict(
    batch_size=32,  # per GPU
    num_workers=2,  # decoding processes per GPU: raise it on larger machines
    dataset=dict(
        _delete_=True,
        type='MultiLabelCsvDataset',
        data_root=data_root,
        ann_file=train_csv,
        classes=classes,
        data_prefix=image_folder,
        pipeline=_base_.train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type='MultiLabelCsvDataset',
        data_root=data_root,
        ann_file=val_csv,
        classes=classes,
        classes_from=train_csv,  # used when classes is None
        data_prefix=image_folder,
        test_mode=True,
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader

# The schedule's learning rates are the paper's for 512 images per step;
# `tools/train.py ... --auto-scale-lr` scales them to your total batch.
# Offline, point the backbone at a local ImageNet checkpoint:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/resnet50.pth
