# Two-way loss, ResNet-50, WIDER Attribute person crops (trainval / test),
# the paper's Table 7 setting (reported: 72.28 mAP@class, 85.43 mAP@sample).
#   tools/dist_train.sh configs/twoway_wider_r50.py 4
# Data under data/wider/; docs/datasets.md gives the layout.
_base_ = [
    './_base_/models/r50_tv.py',  # torchvision IMAGENET1K_V1, as the authors
    './_base_/datasets/wider.py',
    './_base_/schedules/multilabel_40e.py',
    './_base_/default_runtime.py',
]
model = dict(head=dict(num_classes=14))
data_preprocessor = dict(num_classes=14)
