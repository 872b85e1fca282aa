# Two-way loss (eq. 17): Tp = 4, Tn = 1 (Table 1), both ways, buckets of
# M = 128 images (Sec. 4.1) whatever the number of GPUs. A Table 7 cell puts
# `head_loss` in place of its model base's loss.
head_loss = dict(type='TwoWayLoss', tp=4.0, tn=1.0, bucket_size=128)
