# Table 8, "ASL": ResNet-50 trained from scratch on ImageNet-1k with the
# asymmetric loss (gamma+ = 0, gamma- = 4, clip 0.05); paper: 76.76 top-1.
# mmpretrain's AsymmetricLoss, with MultiLabelLinearClsHead turning each
# class label into the one-hot target the loss expects. It runs inside
# IgnoreLabelLoss (ImageNet has no ignored labels) for its float32
# computation: under fp16 AMP the logits are half precision, where ASL's
# eps = 1e-8 rounds to 0 and a positive logit below about -17 gives an
# infinite loss.
#   tools/dist_train.sh configs/imagenet/asl_in1k_r50.py 4
_base_ = ['./_base_/in1k_r50_90e.py']

model = dict(
    head=dict(
        type='MultiLabelLinearClsHead',
        loss=dict(
            type='IgnoreLabelLoss',
            loss=dict(
                type='AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0,
                clip=0.05))))
