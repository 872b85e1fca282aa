# BCE weighted by class frequencies [25]. The weights are statistics of the
# training set: ClassFrequencyHook counts the positive and negative labels of
# every class in runner.train_dataloader.dataset before the first iteration
# and hands them to the loss. No count is typed here.
# formula (docs/protocol.md, "Deviations and readings"):
#   'balanced'   w+ = 1 / 2r, w- = 1 / 2(1 - r), r the class's positive
#                rate: each side weighs half (our reading of [25]; default);
#   'pos_weight' w+ = N / P, w- = 1 (PyTorch's BCEWithLogitsLoss recipe).
# power tempers either: 1 (default), 0.5 square-root, 0 unweighted BCE.
#   e.g. --cfg-options model.head.loss.formula=pos_weight
head_loss = dict(
    type='FrequencyWeightedBCELoss', formula='balanced', power=1.0)
# The cell appends these to the runtime's custom_hooks.
loss_hooks = [dict(type='ClassFrequencyHook')]
