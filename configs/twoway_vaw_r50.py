# Two-way loss, ResNet-50, VAW instance crops (train + val / test),
# the paper's Table 7 setting (reported: 56.42 mAP@class, 78.81 mAP@sample).
#   tools/dist_train.sh configs/twoway_vaw_r50.py 4
# Data under data/vaw/; docs/datasets.md gives the layout.
_base_ = [
    './_base_/models/r50_tv.py',  # torchvision IMAGENET1K_V1, as the authors
    './_base_/datasets/vaw.py',
    './_base_/schedules/multilabel_40e.py',
    './_base_/default_runtime.py',
]
model = dict(head=dict(num_classes=620))
data_preprocessor = dict(num_classes=620)
