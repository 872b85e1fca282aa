# Two-way loss, ResNet-50, PASCAL VOC 2012 (train / val),
# the paper's Table 7 setting (reported: 88.12 mAP@class, 94.38 mAP@sample).
#   tools/dist_train.sh configs/twoway_voc12_r50.py 4
# Data under data/VOCdevkit/VOC2012/; docs/datasets.md gives the layout.
_base_ = [
    './_base_/models/r50_tv.py',  # torchvision IMAGENET1K_V1, as the authors
    './_base_/datasets/voc12.py',
    './_base_/schedules/multilabel_40e.py',
    './_base_/default_runtime.py',
]
model = dict(head=dict(num_classes=20))
data_preprocessor = dict(num_classes=20)
