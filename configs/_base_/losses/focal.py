# Focal loss [18] with gamma = 2 (Sec. 4.3) and the alpha = 0.25 that [18]
# pairs with it: mmpretrain's FocalLoss, unchanged, inside IgnoreLabelLoss
# so that unknown labels (target -1, VAW and WIDER) are left out instead of
# being read as the number -1.
head_loss = dict(
    type='IgnoreLabelLoss',
    loss=dict(type='FocalLoss', gamma=2.0, alpha=0.25))
