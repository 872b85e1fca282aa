# Two-way loss, ResNet-50, Open Images V6 (9,605 classes, partial labels).
#   tools/dist_train.sh configs/openimages/twoway_openimages_r50.py 4
# Protocol and files: docs/openimages.md.
_base_ = [
    '../_base_/models/r50_tv.py',
    './openimages_data.py',
    '../_base_/schedules/multilabel_40e.py',
    '../_base_/default_runtime.py',
]

# Tp = 4, Tn = 1 as on COCO. bucket_size: the whole global batch of 512
# (4 GPUs x 128, one bucket across the 4 ranks). With 9,605 classes a
# class's column has a positive in a bucket of M images with probability
# 1 - (1 - r)^M, r its positive rate; for the many rare classes (r around
# 1e-4) that is ~1.3% at M = 128 and ~5% at M = 512. Columns without a
# positive add no class-wise positive term, so M = 512 gives the class way
# four times as many useful columns at no extra compute (the loss is linear
# in M * C per batch); the paper finds mAP@class grows with M (Table 5).
# On other GPU counts keep 512 / (GPUs x batch per GPU) an integer that
# divides the number of GPUs, or set bucket_size to the per-GPU batch.
model = dict(
    head=dict(
        num_classes=9605,
        loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0, bucket_size=512)))
