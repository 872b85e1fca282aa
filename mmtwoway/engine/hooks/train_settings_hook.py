"""Refuse settings that cannot work before training starts, not after an epoch.

The checks and their reasons are listed in docs/bad_input.md.
"""
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import get_world_size
from mmengine.dataset import InfiniteSampler
from mmengine.hooks import Hook
from mmengine.logging import print_log
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


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if is_model_wrapper(model) else model


def _classes(dataset) -> Optional[Tuple[str, ...]]:
    """A dataset's class names, or None when it has none."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    return tuple(classes) if classes is not None else None


def _source(dataset) -> str:
    """Where a dataset's samples come from, for a message."""
    ann_file = getattr(dataset, 'ann_file', None)
    return f'"{ann_file}"' if ann_file else type(dataset).__name__


def check_num_classes(model: torch.nn.Module, dataset, split: str) -> None:
    """Raise unless the model's ``num_classes`` are the dataset's count.

    Args:
        model (torch.nn.Module): The model (wrapped or not).
        dataset: The dataset of ``split``.
        split (str): ``'train'``, ``'val'`` or ``'test'``, for the message.

    Raises:
        TrainSettingsError: ``model.head.num_classes`` or
            ``data_preprocessor.num_classes`` differs from the number of
            classes of the dataset; the message names both numbers and
            where to set them.
    """
    classes = _classes(dataset)
    if classes is None:
        return
    model = _unwrap(model)
    found = []
    head = getattr(model, 'head', None)
    if getattr(head, 'num_classes', None) is not None:
        found.append(('model.head.num_classes', head.num_classes))
    pre = getattr(model, 'data_preprocessor', None)
    if getattr(pre, 'num_classes', None) is not None:
        found.append(('data_preprocessor.num_classes', pre.num_classes))
    wrong = [(key, n) for key, n in found if n != len(classes)]
    if wrong:
        said = ' and '.join(f'{key} is {n}' for key, n in wrong)
        raise TrainSettingsError(
            f'{said}, but the {split} dataset ({_source(dataset)}) has '
            f'{len(classes)} classes ({_preview(classes)}). Set num_classes='
            f'{len(classes)} in the config: model.head.num_classes and '
            'data_preprocessor.num_classes (the `num_classes` variable of '
            'configs/custom/ templates), or --cfg-options '
            f'model.head.num_classes={len(classes)} '
            f'data_preprocessor.num_classes={len(classes)}.')


def _preview(names: Sequence[str], count: int = 5) -> str:
    shown = ', '.join(names[:count])
    return shown + (', ...' if len(names) > count else '')


def check_same_classes(train_set, val_set, split: str = 'val') -> None:
    """Raise unless two splits index the same classes in the same order.

    Args:
        train_set: The training dataset.
        val_set: The validation (or test) dataset.
        split (str): The name of the second split, for the message.

    Raises:
        TrainSettingsError: The class lists differ; the message names the
            classes only one split has (or the first index that differs)
            and both files, and says how to share one list.
    """
    train, val = _classes(train_set), _classes(val_set)
    if train is None or val is None or train == val:
        return
    where = (f'the training split ({_source(train_set)}, {len(train)} '
             f'classes) and the {split} split ({_source(val_set)}, '
             f'{len(val)} classes)')
    only_val = [c for c in val if c not in set(train)]
    only_train = [c for c in train if c not in set(val)]
    if only_val:
        what = (f'class(es) {only_val[:5]} of the {split} split never occur '
                'in the training split')
    elif only_train:
        what = (f'class(es) {only_train[:5]} of the training split are '
                f'absent from the {split} split, so the same index means '
                'different classes')
    else:
        first = next(i for i, (a, b) in enumerate(zip(train, val)) if a != b)
        what = (f'the classes are in another order (index {first}: '
                f'"{train[first]}" in training, "{val[first]}" in {split})')
    raise TrainSettingsError(
        f'{what}: {where} must share one class list. Give both the same '
        "`classes` (a list or a class file), or give the {0} dataset "
        '`classes_from=<training CSV>` (MultiLabelCsvDataset) so that it '
        'uses the training split\'s sorted names.'.format(split))


def check_classes(runner) -> None:
    """The class checks of :class:`TrainSettingsHook` on a Runner.

    Args:
        runner (Runner): A Runner about to train.

    Raises:
        TrainSettingsError: See :func:`check_num_classes` and
            :func:`check_same_classes`.
    """
    train_set = runner.train_dataloader.dataset
    # The splits first: a class missing from one split also changes its
    # class count, and the split message says why.
    val_loader = getattr(runner.val_loop, 'dataloader', None)
    if val_loader is not None:
        check_same_classes(train_set, val_loader.dataset)
    check_num_classes(runner.model, train_set, 'training')


def check_runner(runner) -> None:
    """Every check of :class:`TrainSettingsHook`, as early as possible.

    ``tools/train.py`` calls this before ``runner.train()``: mmengine
    builds the parameter schedulers before any hook runs, and an epoch
    without an iteration fails there with a message of its own.

    Args:
        runner (Runner): A Runner built from a config with a training
            dataloader.

    Raises:
        TrainSettingsError: Settings that cannot work together.
    """
    check_classes(runner)
    check_train_settings(runner.model, runner.train_dataloader,
                         get_world_size())


def check_work_dir(work_dir: str, resume: bool) -> None:
    """Refuse to start a new run in a work dir that holds another's.

    mmengine would write the new config next to the old checkpoints and
    replace them one by one, leaving a folder of two runs.

    Args:
        work_dir (str): The run's work dir.
        resume (bool): Whether the run resumes (then the checkpoints are
            its own).

    Raises:
        TrainSettingsError: ``work_dir`` holds checkpoints and the run does
            not resume.
    """
    if resume or not osp.isdir(work_dir):
        return
    found = sorted(name for name in os.listdir(work_dir)
                   if name.endswith('.pth') or name == 'last_checkpoint')
    if found:
        raise TrainSettingsError(
            f'the work dir {work_dir} holds the checkpoints of another run '
            f'({_preview(found, 3)}). --resume continues that run; to start '
            'a new one, pass another --work-dir or delete those files.')


def dataset_lines(dataset, split: str) -> List[str]:
    """What the training log says about a dataset: size, classes, source.

    Args:
        dataset: A built dataset.
        split (str): Its split, e.g. ``'train'``.

    Returns:
        list[str]: One line.
    """
    summary = getattr(dataset, 'summary', None)
    if callable(summary):
        return [f'{split} dataset {type(dataset).__name__} {summary()}']
    classes = _classes(dataset)
    count = len(classes) if classes is not None else '?'
    return [f'{split} dataset {type(dataset).__name__} '
            f'{_source(dataset)}: {len(dataset)} samples, {count} classes']


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
    another entry point.

    Checked: before the first iteration (and before testing), the head's
    and data preprocessor's ``num_classes`` against the dataset, the
    validation classes against the training classes, and every batch size
    an epoch produces (the last one included) against each bucket loss's
    ``bucket_size``; before validation and testing, a ``MultiLabelF1`` of
    fixed-threshold labels under a shift-invariant loss is told to warn.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Raise :class:`TrainSettingsError` for settings that cannot work,
        and log the size and classes of the datasets."""
        check_runner(runner)
        lines = dataset_lines(runner.train_dataloader.dataset, 'train')
        val_loader = getattr(runner.val_loop, 'dataloader', None)
        if val_loader is not None:
            lines += dataset_lines(val_loader.dataset, 'val')
        for line in lines:
            print_log(line, logger='current')

    def before_val(self, runner) -> None:
        self._tell_f1_metrics(runner, runner.val_loop)

    def before_test(self, runner) -> None:
        check_num_classes(runner.model, runner.test_loop.dataloader.dataset,
                          'test')
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
