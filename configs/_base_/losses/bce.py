# BCE weighted by class frequencies [25]. The weights are statistics of the
# training set: ClassFrequencyHook counts the positive and negative labels of
# every class in runner.train_dataloader.dataset before the first iteration
# and hands them to the loss (w+ = 1 / 2r, w- = 1 / 2(1 - r), r the positive
# rate of the class). Nothing is typed here.
head_loss = dict(type='FrequencyWeightedBCELoss')
custom_hooks = [dict(type='ClassFrequencyHook')]
