# Asymmetric loss [2] with gamma+ = 0, gamma- = 4, clip m = 0.05 (Sec. 4.3):
# mmpretrain's AsymmetricLoss, unchanged, inside IgnoreLabelLoss so that
# unknown labels (target -1) are left out.
head_loss = dict(
    type='IgnoreLabelLoss',
    loss=dict(
        type='AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05))
