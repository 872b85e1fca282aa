# Table 8, "Ours": ResNet-50 trained from scratch on ImageNet-1k with the
# two-way loss (Tp = 4, Tn = 1, buckets of M = 128); paper: 76.29 top-1.
# A single label becomes a one-hot target (TwoWayLinearClsHead's
# build_target), so the sample-wise part reduces to softmax cross-entropy
# and the class-wise part is what differs from softmax.
#   tools/dist_train.sh configs/imagenet/twoway_in1k_r50.py 4
# The ImageNet checkpoint then feeds tools/linear_probe.py.
_base_ = ['./_base_/in1k_r50_90e.py']

model = dict(
    head=dict(
        type='TwoWayLinearClsHead',
        loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0, bucket_size=128)))
