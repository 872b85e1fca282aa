# Two-way loss, ResNet-50, MS-COCO 2014 — the paper's main setting
# (Table 7: 74.11 mAP@class, 86.66 mAP@sample).
#   tools/dist_train.sh configs/twoway_coco_r50.py 4
_base_ = [
    './_base_/models/r50_tv.py',  # torchvision IMAGENET1K_V1, as the authors
    './_base_/datasets/coco.py',
    './_base_/schedules/multilabel_40e.py',
    './_base_/default_runtime.py',
]
