# Asymmetric loss [2] with gamma+ = 0, gamma- = 4, clip m = 0.05 (Sec. 4.3),
# trained as its official implementation trains it: the focusing weight is
# detached from the graph (its disable_torch_grad_focal_loss=True), so the
# gradient is the weight times the clipped cross-entropy gradient. Unknown
# labels (target -1) are left out.
# mmpretrain's behaviour (gradient also through the weight): set
# detach_focusing_weight=False, or use mmpretrain's loss itself:
#   dict(type='IgnoreLabelLoss', loss=dict(type='AsymmetricLoss',
#        gamma_pos=0.0, gamma_neg=4.0, clip=0.05))
head_loss = dict(
    type='OfficialAsymmetricLoss',
    gamma_pos=0.0,
    gamma_neg=4.0,
    clip=0.05,
    detach_focusing_weight=True)
