# Softmax cross-entropy with normalised labels (eq. 18), sample-wise: the
# "Softmax" rows of Table 7 (= Table 3b, sample). Class-wise variants
# (Table 3b) use buckets of M = 128 like the two-way loss.
head_loss = dict(type='NormalizedSoftmaxLoss', ways='sample', bucket_size=128)
