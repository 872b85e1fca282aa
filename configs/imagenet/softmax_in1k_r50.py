# Table 8, "Softmax": ResNet-50 trained from scratch on ImageNet-1k with
# softmax cross-entropy (eq. 1); paper: 76.32 top-1.
#   tools/dist_train.sh configs/imagenet/softmax_in1k_r50.py 4
_base_ = ['./_base_/in1k_r50_90e.py']

model = dict(
    head=dict(
        type='LinearClsHead',
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
