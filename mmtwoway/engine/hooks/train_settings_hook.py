"""Refuse settings that cannot work before training starts, not after an epoch.

Two kinds of settings are checked:

* **Buckets against the dataloader** (before the first iteration): a bucket
  loss splits every local batch into buckets of ``bucket_size`` (or gathers
  a bucket over several ranks), so every batch size an epoch will produce
  must fit, the last one included. With ``drop_last=False`` the last batch
  of an epoch is ``samples per process % batch_size``; a bucket size that
  does not divide it used to fail at the last iteration of epoch 1, after a
  whole epoch and without a checkpoint. The dataset length, the world size
  and ``drop_last`` also decide whether an epoch has any iteration at all.
* **A meaningless F1** (before validation and testing): a head that decides
  labels with a fixed threshold on sigmoid scores (mmpretrain's
  ``MultiLabelLinearClsHead`` / ``CSRAClsHead``, ``thr=0.5`` by default)
  trained with a shift-invariant loss such as ``TwoWayLoss``: its logits
  have no zero point, so ``MultiLabelF1`` of the head's labels means
  nothing. Each such ``MultiLabelF1`` is told, and warns with its results.
"""
from typing import Iterator, Optional, Tuple

import torch
from mmengine.dist import get_world_size
from mmengine.dataset import InfiniteSampler
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from mmtwoway.evaluation.metrics import MultiLabelF1
from mmtwoway.models.losses.bucket_loss import BucketLoss, ranks_per_bucket


class TrainSettingsError(ValueError):
    """Training settings that cannot work together."""


def _batch_size(loader) -> Tuple[Optional[int], bool]:
    """The batch size and ``drop_last`` of a torch DataLoader."""
    batch_size, drop_last = loader.batch_size, loader.drop_last
    if batch_size is None:  # a custom batch sampler
        batch_sampler = getattr(loader, 'batch_sampler', None)
        batch_size = getattr(batch_sampler, 'batch_size', None)
        drop_last = getattr(batch_sampler, 'drop_last', False)
    return batch_size, bool(drop_last)


def bucket_losses(model: torch.nn.Module
                  ) -> Iterator[Tuple[str, BucketLoss]]:
    """The bucket losses of a model with a ``bucket_size``, by name."""
    if is_model_wrapper(model):
        model = model.module
    for name, module in model.named_modules():
        if isinstance(module, BucketLoss) and module.bucket_size is not None:
            yield name, module


def check_train_settings(model: torch.nn.Module, loader,
                         world_size: int) -> None:
    """Raise if the dataloader, world size and bucket losses cannot work.

    Args:
        model (torch.nn.Module): The model (wrapped or not).
        loader (torch.utils.data.DataLoader): The training DataLoader of
            one process.
        world_size (int): The number of training processes.

    Raises:
        TrainSettingsError: An epoch would have no iteration, or a batch
            size that some epoch produces does not fit a bucket loss's
            ``bucket_size``. The message gives the numbers and what to
            change.
    """
    batch_size, drop_last = _batch_size(loader)
    sampler = getattr(loader, 'sampler', None)
    if batch_size is None or sampler is None:
        return  # an unusual loader: nothing known to check
    dataset_len = len(loader.dataset) if hasattr(loader.dataset,
                                                 '__len__') else None
    infinite = isinstance(sampler, InfiniteSampler)
    per_rank = len(sampler)
    origin = (f'{dataset_len} training samples over {world_size} '
              f'process(es) give {per_rank} per process'
              if dataset_len is not None else
              f'{per_rank} training samples per process')
    if per_rank == 0:
        raise TrainSettingsError(
            f'{origin}: the training set is empty. Check the train '
            "dataset's ann_file, data_root and data_prefix.")
    if drop_last and not infinite and per_rank < batch_size:
        raise TrainSettingsError(
            f'{origin}, fewer than one batch of {batch_size} with '
            'drop_last=True, so an epoch has no iteration. Use a smaller '
            'train_dataloader.batch_size, fewer processes, or '
            'drop_last=False.')
    sizes = [batch_size]
    last = per_rank % batch_size
    if last and not drop_last and not infinite:
        sizes.append(last)
    for name, loss in bucket_losses(model):
        for size in sizes:
            try:
                ranks_per_bucket(loss.bucket_size, size, world_size)
            except ValueError as err:
                if size == batch_size:
                    why = f'the batch size is {batch_size}'
                else:
                    why = (f'{origin}, so with batch_size={batch_size} and '
                           f'drop_last=False the last batch of every epoch '
                           f'has {size} samples')
                raise TrainSettingsError(
                    f'{type(loss).__name__} ({name}) with bucket_size='
                    f'{loss.bucket_size} cannot train here: {why}. {err} '
                    'Checked before the first iteration, so that it does '
                    'not fail after an epoch.') from None


def meaningless_f1(model: torch.nn.Module) -> Optional[str]:
    """Why the F1 of a model's own labels means nothing, if it does not.

    Args:
        model (torch.nn.Module): The model (wrapped or not).

    Returns:
        str or None: A reason when the head thresholds sigmoid scores at a
        fixed value but its loss is shift-invariant (its logits have no
        zero point); None otherwise.
    """
    if is_model_wrapper(model):
        model = model.module
    head = getattr(model, 'head', None)
    loss = getattr(head, 'loss_module', None)
    if (head is None or hasattr(head, 'decision')
            or not getattr(loss, 'SHIFT_INVARIANT', False)
            or getattr(head, 'thr', None) is None):
        return None
    return (f"the model's labels are sigmoid(logit) > {head.thr} "
            f'({type(head).__name__} with {type(loss).__name__}), but '
            f'{type(loss).__name__} is invariant to shifting the logits, so '
            'they have no zero point and this threshold means nothing. Use '
            'TwoWayLinearClsHead with a calibration file from '
            'tools/calibrate.py, or give MultiLabelF1 its own decision '
            '(calibration=FILE or topk=K).')


@HOOKS.register_module()
class TrainSettingsHook(Hook):
    """Check the training settings before the first iteration.

    ``tools/train.py`` and ``tools/test.py`` add this hook to every run; add
    it with ``custom_hooks = [dict(type='TrainSettingsHook')]`` when using
    another entry point. See the module docstring for what is checked.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Raise :class:`TrainSettingsError` for settings that cannot work."""
        check_train_settings(runner.model, runner.train_dataloader,
                             get_world_size())

    def before_val(self, runner) -> None:
        self._tell_f1_metrics(runner, runner.val_loop)

    def before_test(self, runner) -> None:
        self._tell_f1_metrics(runner, runner.test_loop)

    @staticmethod
    def _tell_f1_metrics(runner, loop) -> None:
        """Have every ``MultiLabelF1`` of the head's labels warn if needed."""
        reason = meaningless_f1(runner.model)
        evaluator = getattr(loop, 'evaluator', None)
        if reason is None or evaluator is None:
            return
        for metric in evaluator.metrics:
            # A metric with a decision of its own does not use the head's.
            if isinstance(metric, MultiLabelF1) and metric.decision is None:
                metric.warn_about_decision(reason)
