"""Settings of the loss benchmark and the configs it compares.

A :class:`Setting` holds the sizes and schedules of one run of the
benchmark (``quick``, ``default``, ``gpu`` in :data:`SETTINGS`);
:func:`finetune_losses` and :func:`pretrain_heads` are the compared losses
and pretraining heads as mmpretrain configs.
"""
import copy
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

from mmpretrain.registry import MODELS

import mmtwoway  # noqa: F401  (registers the losses and heads compared)
from .data import NUM_CLASSES


@dataclasses.dataclass
class Setting:
    """Sizes and schedules of one benchmark setting.

    Args:
        name (str): Setting name.
        seeds (int): Number of seeds (pretraining + fine-tuning each).
        backbone (dict): mmpretrain backbone config.
        feat_channels (int): Channels of the backbone's last stage.
        num_train (int): Train mosaics.
        num_val (int): Val mosaics (from Fashion-MNIST test images).
        canvas (int): Mosaic side in pixels.
        item_size (tuple[int, int]): Range of item sides on the canvas.
        max_items (int): Most items per mosaic.
        imbalance (float): Most / least frequent class.
        pretrain_images (int): Fashion-MNIST train images for pretraining.
        pretrain_test (int): Fashion-MNIST test images to score it on.
        pretrain_epochs (int): Pretraining epochs.
        pretrain_batch (int): Pretraining batch size.
        pretrain_lr (float): Pretraining learning rate (from scratch).
        epochs (int): Fine-tuning epochs.
        batch (int): Fine-tuning batch size.
        bucket (int): Bucket size M of the bucket-wise losses.
        lr (float): Fine-tuning backbone learning rate; the classifier gets
            10x, as in the paper (0.001 / 0.01 there for a batch of 512).
        weight_decay (float): SGD weight decay (the paper's 1e-4).
        few_shot (int): Train scans per class of the few-shot probe.
        num_workers (int): Dataloader workers.
    """
    name: str
    seeds: int
    backbone: dict
    feat_channels: int
    num_train: int
    num_val: int
    canvas: int
    item_size: Tuple[int, int]
    max_items: int
    imbalance: float
    pretrain_images: int
    pretrain_test: int
    pretrain_epochs: int
    pretrain_batch: int
    pretrain_lr: float
    epochs: int
    batch: int
    bucket: int
    lr: float
    weight_decay: float = 1e-4
    few_shot: int = 10
    num_workers: int = 0


def cifar_resnet(depth: int, width: int,
                  strides: Tuple[int, ...] = (1, 2, 2, 2)) -> dict:
    """mmpretrain's CIFAR ResNet (3x3 stem, no max-pool) of a given width;
    ``strides[0] = 2`` halves the resolution of the first stage, which
    holds most of the cost on small images.

    Args:
        depth (int): ResNet depth.
        width (int): Channels of the stem and the first stage.
        strides (tuple[int, ...]): Stride of each stage.

    Returns:
        dict: The backbone config.
    """
    return dict(type='ResNet_CIFAR', depth=depth, stem_channels=width,
                base_channels=width, strides=strides, out_indices=(3, ))


SETTINGS = {
    'quick': Setting(
        name='quick', seeds=2, backbone=cifar_resnet(18, 4, (2, 2, 2, 2)),
        feat_channels=32, num_train=64, num_val=32, canvas=32,
        item_size=(12, 16), max_items=3, imbalance=10.0,
        pretrain_images=256, pretrain_test=128, pretrain_epochs=1,
        pretrain_batch=64, pretrain_lr=0.1, epochs=2, batch=32, bucket=32,
        lr=0.02, few_shot=5),
    # About 15 minutes on 2 lightly loaded CPU cores (--threads 1 when
    # other jobs keep them busy).
    'default': Setting(
        name='default', seeds=3, backbone=cifar_resnet(18, 12, (2, 2, 2, 2)),
        feat_channels=96, num_train=1024, num_val=640, canvas=48,
        item_size=(16, 24), max_items=4, imbalance=10.0,
        pretrain_images=4096, pretrain_test=2000, pretrain_epochs=3,
        pretrain_batch=64, pretrain_lr=0.1, epochs=12, batch=32, bucket=32,
        lr=0.05),
    'gpu': Setting(
        name='gpu', seeds=5, backbone=cifar_resnet(18, 64),
        feat_channels=512, num_train=40000, num_val=10000, canvas=64,
        item_size=(20, 32), max_items=6, imbalance=20.0,
        pretrain_images=60000, pretrain_test=10000, pretrain_epochs=15,
        pretrain_batch=256, pretrain_lr=0.2, epochs=20, batch=512,
        bucket=128, lr=0.01, num_workers=8),
}


def finetune_losses(setting: Setting) -> Dict[str, dict]:
    """The compared multi-label losses, as mmpretrain loss configs.

    Hyper-parameters are the paper's (Sec. 4.3, Table 4a): Tp = 4, Tn = 1 for
    two-way and multi-similarity, gamma = 2 for focal, gamma+ = 0,
    gamma- = 4, m = 0.05 for ASL; BCE weighted by the training set's class
    frequencies [25] (counted on the train mosaics by mmtwoway's
    ``ClassFrequencyHook``, see :data:`LOSS_HOOKS`). 'ASL' is the official
    implementation's gradient (focusing weight detached, as the Table 7
    configs); 'ASL, weight in the graph (mmpretrain)' is mmpretrain's
    ``AsymmetricLoss``. mmpretrain's focal and ASL treat every entry as
    labelled, so they are wrapped in mmtwoway's ignore-label wrapper (the
    mosaics have no ignored entries, but this is how mmtwoway uses them).

    Args:
        setting (Setting): Gives the bucket size M.

    Returns:
        dict[str, dict]: Display name -> loss config.
    """
    return {
        'two-way': dict(type='TwoWayLoss', tp=4.0, tn=1.0,
                        bucket_size=setting.bucket),
        'softmax (eq. 18)': dict(type='NormalizedSoftmaxLoss'),
        'BCE': dict(type='CrossEntropyLoss', use_sigmoid=True),
        'BCE, frequency-weighted': dict(type='FrequencyWeightedBCELoss'),
        'focal': dict(type='IgnoreLabelLoss',
                      loss=dict(type='FocalLoss', gamma=2.0, alpha=0.25)),
        'ASL': dict(type='OfficialAsymmetricLoss', gamma_pos=0.0,
                    gamma_neg=4.0, clip=0.05, detach_focusing_weight=True),
        'ASL, weight in the graph (mmpretrain)': dict(
            type='IgnoreLabelLoss',
            loss=dict(type='AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0,
                      clip=0.05)),
        'multi-similarity': dict(type='MultiSimilarityLoss', tp=4.0,
                                 tn=1.0, bucket_size=setting.bucket),
    }


#: Hooks a loss needs in the Runner: the frequency-weighted BCE gets its
#: class weights from the training set before the first iteration.
LOSS_HOOKS = {'FrequencyWeightedBCELoss': [dict(type='ClassFrequencyHook')]}


def pretrain_heads(setting: Setting) -> Dict[str, dict]:
    """Single-label pretraining heads of Table 8: softmax, ours, ASL.

    Args:
        setting (Setting): Gives the feature width and the bucket size M.

    Returns:
        dict[str, dict]: Display name -> head config.
    """
    common = dict(num_classes=NUM_CLASSES, in_channels=setting.feat_channels)
    return {
        'softmax': dict(type='LinearClsHead',
                        loss=dict(type='CrossEntropyLoss'), **common),
        'two-way': dict(type='TwoWayLinearClsHead',
                        loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0,
                                  bucket_size=setting.bucket), **common),
        # As configs/imagenet/asl_in1k_r50.py: the official ASL gradient.
        'ASL': dict(type='TwoWayLinearClsHead',
                    loss=dict(type='OfficialAsymmetricLoss', gamma_pos=0.0,
                              gamma_neg=4.0, clip=0.05,
                              detach_focusing_weight=True), **common),
    }


def unavailable(loss_cfg: dict) -> Optional[str]:
    """Why ``loss_cfg`` cannot be built here, or None if it can.

    Args:
        loss_cfg (dict): A loss config.

    Returns:
        str | None: The error's first line (type and message), or None.
    """
    try:
        MODELS.build(copy.deepcopy(loss_cfg))
    except Exception as err:  # a missing or broken loss is reported, not run
        return f'{type(err).__name__}: {err}'.splitlines()[0][:200]
    return None


#: Seed of the mosaics: the same for every benchmark seed, so that all runs
#: see the same data.
MOSAIC_SEED = 0

#: The Setting fields a pretraining run depends on (its cache key; see
#: ``training.Benchmark``).
PRETRAIN_FIELDS = ('backbone', 'feat_channels', 'pretrain_images',
                   'pretrain_test', 'pretrain_epochs', 'pretrain_batch',
                   'pretrain_lr', 'weight_decay', 'few_shot', 'num_workers')


def resolve_setting(name: str, **overrides: Optional[float]) -> Setting:
    """A copy of a setting, with some fields replaced.

    Args:
        name (str): A key of :data:`SETTINGS`.
        **overrides: Field -> value; None keeps the setting's value (so a
            command line's unset options can be passed as they are).

    Returns:
        Setting: The copy; :data:`SETTINGS` is left untouched.

    Raises:
        ValueError: If ``name`` or a field is unknown.
    """
    if name not in SETTINGS:
        raise ValueError(f'unknown setting {name!r}; choose from '
                         f'{sorted(SETTINGS)}')
    setting = copy.deepcopy(SETTINGS[name])
    fields = {f.name for f in dataclasses.fields(Setting)}
    for field, value in overrides.items():
        if field not in fields:
            raise ValueError(f'Setting has no field {field!r}')
        if value is not None:
            setattr(setting, field, value)
    return setting


def select_losses(losses: Dict[str, dict],
                  names: Optional[Sequence[str]]) -> Dict[str, dict]:
    """The losses named in ``names`` (all of them if None), in table order.

    Args:
        losses (dict[str, dict]): From :func:`finetune_losses`.
        names (Sequence[str], optional): Display names to keep.

    Returns:
        dict[str, dict]: The kept losses.

    Raises:
        ValueError: If a name is not a key of ``losses``.
    """
    if not names:
        return dict(losses)
    unknown = sorted(set(names) - set(losses))
    if unknown:
        raise ValueError(f'unknown {unknown}; choose from {sorted(losses)}')
    return {k: v for k, v in losses.items() if k in names}


def mosaic_command(setting: Setting, out_dir: str,
                   data_root: str) -> List[str]:
    """The ``tools/misc/make_mosaic_data.py`` arguments that write this
    setting's mosaics; stored beside them as the stamp of what they are.

    Args:
        setting (Setting): Gives the mosaic sizes.
        out_dir (str): The mosaics' folder.
        data_root (str): Fashion-MNIST IDX folder.

    Returns:
        list[str]: The arguments (after the program name).
    """
    return [
        out_dir, '--source', 'fashion-mnist', '--data-root', data_root,
        '--num-train', str(setting.num_train), '--num-val',
        str(setting.num_val), '--canvas', str(setting.canvas), '--item-size',
        *map(str, setting.item_size), '--max-items', str(setting.max_items),
        '--imbalance', str(setting.imbalance), '--seed', str(MOSAIC_SEED)
    ]
