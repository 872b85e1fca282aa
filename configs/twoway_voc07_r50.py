# Two-way loss, ResNet-50, PASCAL VOC 2007 (trainval / test),
# the paper's Table 7 setting (reported: 89.04 mAP@class, 94.44 mAP@sample).
#   tools/dist_train.sh configs/twoway_voc07_r50.py 4
# Data under data/VOCdevkit/VOC2007/; docs/datasets.md gives the layout.
_base_ = [
    './_base_/models/r50_tv.py',  # torchvision IMAGENET1K_V1, as the authors
    './_base_/datasets/voc07.py',
    './_base_/schedules/multilabel_40e.py',
    './_base_/default_runtime.py',
]
model = dict(head=dict(num_classes=20))
data_preprocessor = dict(num_classes=20)
