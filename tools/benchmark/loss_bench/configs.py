"""mmengine configs of the loss benchmark's runs.

The Runner (the paper's optimiser and schedule), the model and the
dataloaders, and a hook that keeps every validation result.
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from .data import MEAN, NUM_CLASSES, STD
from .settings import Setting


class MetricHistory(Hook):
    """Keeps every validation result with its epoch."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.history: List[dict] = []

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Append ``metrics`` with the epoch just validated.

        Args:
            runner (Runner): The Runner.
            metrics (dict, optional): The evaluator's results.
        """
        self.history.append(dict(epoch=runner.epoch, **(metrics or {})))


def build_runner(setting: Setting, work_dir: str, model: dict,
                 train_loader: dict, val_loader: dict, evaluator: dict,
                 epochs: int, lr: float, head_lr_mult: float, seed: int,
                 save: bool, name: str,
                 hooks: Sequence[dict] = ()) -> Tuple[Runner, MetricHistory]:
    """An mmengine Runner with the paper's optimiser and schedule.

    SGD with Nesterov momentum, cosine annealing per iteration, validation
    after every epoch; AMP (bfloat16) on a GPU only.

    Args:
        setting (Setting): Gives the weight decay.
        work_dir (str): The Runner's work dir.
        model (dict): Model config (:func:`model_config`).
        train_loader (dict): Train dataloader config.
        val_loader (dict): Val dataloader config.
        evaluator (dict): Val metric config.
        epochs (int): Training epochs.
        lr (float): Backbone learning rate.
        head_lr_mult (float): Learning-rate multiplier of the head.
        seed (int): Runner seed (weights, head initialisation, batches).
        save (bool): Save a checkpoint after the last epoch.
        name (str): Experiment name (the log folder).
        hooks (Sequence[dict]): Extra custom hooks (:data:`LOSS_HOOKS`).

    Returns:
        tuple[Runner, MetricHistory]: The Runner and its metric history.
    """
    history = MetricHistory()
    optim = dict(
        type='AmpOptimWrapper' if torch.cuda.is_available() else
        'OptimWrapper',
        optimizer=dict(type='SGD', lr=lr, momentum=0.9, nesterov=True,
                       weight_decay=setting.weight_decay),
        paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=head_lr_mult)}))
    if torch.cuda.is_available():
        optim['dtype'] = 'bfloat16'
    runner = Runner(
        model=model,
        work_dir=work_dir,
        experiment_name=name,
        train_dataloader=train_loader,
        val_dataloader=val_loader,
        val_evaluator=evaluator,
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=optim,
        param_scheduler=dict(type='CosineAnnealingLR', T_max=epochs,
                             by_epoch=True, convert_to_iter_based=True),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=10**6),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', interval=epochs,
                            save_optimizer=False, save_param_scheduler=False)
            if save else None),
        custom_hooks=[*copy.deepcopy(list(hooks)), history],
        randomness=dict(seed=seed),
        default_scope='mmpretrain',
        log_level='WARNING',
        env_cfg=dict(cudnn_benchmark=True))
    return runner, history


def loader_config(setting: Setting, dataset, batch: int,
                  train: bool) -> dict:
    """A dataloader config: shuffled without the last partial batch for
    training, in order for validation.

    Args:
        setting (Setting): Gives the number of workers.
        dataset (dict | BaseDataset): The dataset or its config.
        batch (int): Batch size.
        train (bool): Training (shuffle, drop last) or validation.

    Returns:
        dict: The config.
    """
    return dict(
        batch_size=batch,
        num_workers=setting.num_workers,
        persistent_workers=setting.num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=train,
        sampler=dict(type='DefaultSampler', shuffle=train),
        dataset=dataset)


def model_config(setting: Setting, head: dict,
                 checkpoint: Optional[str] = None) -> dict:
    """An ``ImageClassifier`` config: the setting's backbone, global
    average pooling, ``head``, Fashion-MNIST normalisation.

    Args:
        setting (Setting): Gives the backbone.
        head (dict): Head config.
        checkpoint (str, optional): Load the backbone from this checkpoint
            (a pretraining run's).

    Returns:
        dict: The config.
    """
    backbone = dict(setting.backbone)
    if checkpoint:
        backbone['init_cfg'] = dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone')
    return dict(
        type='ImageClassifier',
        data_preprocessor=dict(
            type='ClsDataPreprocessor', num_classes=NUM_CLASSES,
            mean=[MEAN] * 3, std=[STD] * 3, to_rgb=True),
        backbone=backbone,
        neck=dict(type='GlobalAveragePooling'),
        head=head)
