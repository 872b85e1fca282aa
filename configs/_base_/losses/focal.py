# Focal loss [18] with gamma = 2 (Sec. 4.3): mmpretrain's FocalLoss,
# unchanged, inside IgnoreLabelLoss so that unknown labels (target -1, VAW
# and WIDER) are left out instead of being read as the number -1.
# alpha (the paper does not give it; docs/protocol.md, "Deviations and
# readings"):
#   0.25  what [18] pairs with gamma = 2 (positives x 0.25, negatives
#         x 0.75); mmpretrain's default too; used here;
#   0.5   both sides alike (the alpha-free focal loss, halved);
#   e.g. --cfg-options model.head.loss.loss.alpha=0.5
head_loss = dict(
    type='IgnoreLabelLoss',
    loss=dict(type='FocalLoss', gamma=2.0, alpha=0.25))
