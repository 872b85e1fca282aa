"""Count the training set's labels per class and hand them to the losses."""
from typing import Tuple

import torch
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample

from mmtwoway.structures import build_target


def count_labels(dataset: BaseDataset,
                 num_classes: int,
                 chunk: int = 4096) -> Tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative label counts of every class of a dataset.

    Reads the annotations only (``get_data_info``), never the images, and
    turns each sample into its target row exactly as the head does
    (:func:`mmtwoway.structures.build_target`: ``gt_score`` with -1
    ignored, else ``gt_label`` with every other class negative), so the
    counts are those of the labels the loss is trained on.

    Args:
        dataset (BaseDataset):
            the training dataset (any mmengine dataset, including
            ``ConcatDataset``).
        num_classes (int): number of classes C.
        chunk (int): samples turned into targets at a time.

    Returns:
        tuple[Tensor, Tensor]: int64 ``(C,)`` positive and negative counts.
    """
    pos = torch.zeros(num_classes, dtype=torch.long)
    neg = torch.zeros(num_classes, dtype=torch.long)
    for start in range(0, len(dataset), chunk):
        samples = []
        for idx in range(start, min(start + chunk, len(dataset))):
            info = dataset.get_data_info(idx)
            sample = DataSample(metainfo=dict(img_path=info.get('img_path')))
            if 'gt_score' in info:
                sample.set_gt_score(info['gt_score'])
            elif 'gt_label' in info:
                sample.set_gt_label(info['gt_label'])
            else:
                raise KeyError(
                    f'Sample {idx} ({info.get("img_path")}) of '
                    f'{type(dataset).__name__} has neither gt_label nor '
                    'gt_score, so its labels cannot be counted.')
            samples.append(sample)
        target = build_target(samples, num_classes, device='cpu')
        pos += (target > 0).sum(0)
        neg += (target == 0).sum(0)
    return pos, neg


@HOOKS.register_module()
class ClassFrequencyHook(Hook):
    """Set class-frequency loss weights from the training set before training.

    Before the first iteration it counts the positive and negative labels
    of every class in ``runner.train_dataloader.dataset``
    (:func:`count_labels`) and calls ``set_label_counts(pos, neg)`` on every
    module of the model that has it (``FrequencyWeightedBCELoss``). Each
    rank holds the whole dataset, so every rank computes the same weights.
    The number of classes is the length of the dataset's ``classes``.

    Why a hook rather than counts in the config: the weights are a function
    of the exact training set the run uses (its split, any concatenation,
    dropped boxes), which only the runner knows; typing them, or building
    a second copy of the dataset inside the model, would let the two drift
    apart.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        takers = [
            module for module in runner.model.modules()
            if hasattr(module, 'set_label_counts')
        ]
        if not takers:
            raise RuntimeError(
                'ClassFrequencyHook is in custom_hooks but no module of the '
                'model takes class frequencies (set_label_counts); remove the'
                ' hook or use FrequencyWeightedBCELoss.')
        dataset = runner.train_dataloader.dataset
        classes = dataset.metainfo.get('classes')
        if not classes:
            raise ValueError(
                f'ClassFrequencyHook: the training dataset '
                f'{type(dataset).__name__} has no metainfo "classes", so the '
                'number of classes to count is unknown.')
        pos, neg = count_labels(dataset, len(classes))
        for module in takers:
            module.set_label_counts(pos, neg)
        runner.logger.info(
            f'ClassFrequencyHook: {len(dataset)} training samples, '
            f'{len(classes)} classes; positives per class min '
            f'{int(pos.min())} / max {int(pos.max())}, labelled entries '
            f'{int((pos + neg).sum())}.')
