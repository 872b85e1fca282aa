# Asymmetric loss (the loss the Open Images partial-label baselines of
# Ben-Baruch et al., CVPR 2022, build on), ResNet-50, Open Images V6 with
# the same data, schedule and protocol as twoway_openimages_r50.py.
#   tools/dist_train.sh configs/openimages/asl_openimages_r50.py 4
_base_ = [
    '../_base_/models/r50_tv.py',
    './openimages_data.py',
    '../_base_/schedules/multilabel_40e.py',
    '../_base_/default_runtime.py',
    '../_base_/losses/asl.py',
]

# The loss base defines head_loss; it replaces the model base's default.
# Ignored labels (target -1) are left out of the loss.
model = dict(
    head=dict(
        num_classes=9605,
        loss=dict(_delete_=True, **_base_.head_loss)))
