# Two-way loss, ResNet-50, VISPR2017 (train + val / test),
# the paper's Table 7 setting (reported: 51.89 mAP@class, 85.64 mAP@sample).
#   tools/dist_train.sh configs/twoway_vispr_r50.py 4
# Data under data/vispr/; docs/datasets.md gives the layout.
_base_ = [
    './_base_/models/r50_tv.py',  # torchvision IMAGENET1K_V1, as the authors
    './_base_/datasets/vispr.py',
    './_base_/schedules/multilabel_40e.py',
    './_base_/default_runtime.py',
]
model = dict(head=dict(num_classes=68))
data_preprocessor = dict(num_classes=68)
