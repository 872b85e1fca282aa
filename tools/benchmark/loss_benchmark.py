"""The paper's protocol in miniature, on real images available offline.

    python tools/benchmark/loss_benchmark.py            # ~30 min, 2 CPU cores
    python tools/benchmark/loss_benchmark.py --quick    # smoke run, < 1 min
    python tools/benchmark/loss_benchmark.py --gpu      # bigger data and net

Needs Fashion-MNIST (``apt-get install -y dataset-fashion-mnist``, or
``make bench-data``). For every seed:

1. **Pretraining** (the ImageNet analogue, Sec. 4.4 / Table 8): a small
   ResNet learns single-label Fashion-MNIST from scratch with softmax
   cross-entropy, the two-way loss and ASL. Each backbone is then frozen
   and a linear classifier (logistic regression) is fitted on its features
   of another dataset, scikit-learn's handwritten digits (all train scans,
   and 10 per class): Table 8's linear-probe transfer.
2. **Fine-tuning** (Sec. 4.1 / Table 7): the softmax-pretrained backbone is
   fine-tuned on multi-label Fashion-MNIST mosaics
   (``tools/misc/make_mosaic_data.py``: train mosaics from the official
   train images, val mosaics from the test images, long-tailed classes)
   with each loss — two-way, softmax (eq. 18), BCE, frequency-weighted BCE,
   focal, ASL, multi-similarity — under one schedule: SGD (Nesterov),
   cosine per iteration, 10x learning rate for the classifier, the same
   buckets, the same seeds (so every loss sees the same initial head and
   batch order). mAP@class and mAP@sample are measured after every epoch.

Everything runs through what mmtwoway ships: the mmengine ``Runner``,
mmpretrain's ``ImageClassifier``, ``CocoMultiLabel``, ``TwoWayLinearClsHead``
and ``MultiLabelMAP``; only the loss changes between runs. The results go
into ``docs/benchmark.md`` (between the ``loss_benchmark`` markers; the rest
of the file is kept) and a PNG plot beside it. Finished runs are cached in
``WORK_DIR/results.json``; running the same command again only trains what
is missing (``--fresh`` retrains all).
"""
import argparse
import copy
import dataclasses
import datetime
import hashlib
import importlib.util
import json
import os
import os.path as osp
import platform
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import mmtwoway  # noqa: F401  (registers the loss, head, metric, dataset)
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import MODELS
from mmtwoway.testing.idx import (FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT,
                                   load_fashion_mnist)
from mmtwoway.testing.mosaic import digits_item_pool, resize_item

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BEGIN = '<!-- loss_benchmark:begin -->'
END = '<!-- loss_benchmark:end -->'
NUM_CLASSES = len(FASHION_MNIST_CLASSES)
# Fashion-MNIST pixel statistics (0..255): the items of pretraining and of
# the mosaics are normalised alike, as ImageNet statistics are for COCO.
MEAN, STD = 72.94, 90.02


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


def _cifar_resnet(depth: int, width: int,
                  strides: Tuple[int, ...] = (1, 2, 2, 2)) -> dict:
    """mmpretrain's CIFAR ResNet (3x3 stem, no max-pool) of a given width;
    ``strides[0] = 2`` halves the resolution of the first stage, which
    holds most of the cost on small images."""
    return dict(type='ResNet_CIFAR', depth=depth, stem_channels=width,
                base_channels=width, strides=strides, out_indices=(3, ))


SETTINGS = {
    'quick': Setting(
        name='quick', seeds=2, backbone=_cifar_resnet(18, 4, (2, 2, 2, 2)),
        feat_channels=32, num_train=64, num_val=32, canvas=32,
        item_size=(12, 16), max_items=3, imbalance=10.0,
        pretrain_images=256, pretrain_test=128, pretrain_epochs=1,
        pretrain_batch=64, pretrain_lr=0.1, epochs=2, batch=32, bucket=32,
        lr=0.02, few_shot=5),
    # About 15 minutes on 2 lightly loaded CPU cores (--threads 1 when
    # other jobs keep them busy).
    'default': Setting(
        name='default', seeds=3, backbone=_cifar_resnet(18, 12, (2, 2, 2, 2)),
        feat_channels=96, num_train=1024, num_val=640, canvas=48,
        item_size=(16, 24), max_items=4, imbalance=10.0,
        pretrain_images=4096, pretrain_test=2000, pretrain_epochs=3,
        pretrain_batch=64, pretrain_lr=0.1, epochs=12, batch=32, bucket=32,
        lr=0.05),
    'gpu': Setting(
        name='gpu', seeds=5, backbone=_cifar_resnet(18, 64),
        feat_channels=512, num_train=40000, num_val=10000, canvas=64,
        item_size=(20, 32), max_items=6, imbalance=20.0,
        pretrain_images=60000, pretrain_test=10000, pretrain_epochs=15,
        pretrain_batch=256, pretrain_lr=0.2, epochs=20, batch=512,
        bucket=128, lr=0.01, num_workers=8),
}


# ------------------------------------------------------------------- losses


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
    """Single-label pretraining heads of Table 8: softmax, ours, ASL."""
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
    """Why ``loss_cfg`` cannot be built here, or None if it can."""
    try:
        MODELS.build(copy.deepcopy(loss_cfg))
    except Exception as err:  # a missing or broken loss is reported, not run
        return f'{type(err).__name__}: {err}'.splitlines()[0][:200]
    return None


# --------------------------------------------------------------------- data


class ArrayDataset(BaseDataset):
    """Single-label images held in memory, as an mmpretrain dataset.

    Args:
        images (np.ndarray): (N, h, w) uint8 grey images; they are given
            three identical channels like the mosaics' RGB PNGs.
        labels (np.ndarray): (N,) class indices.
        pipeline (Sequence[dict]): Transforms; PackInputs at the end.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray,
                 pipeline: Sequence[dict] = (dict(type='PackInputs'), )):
        if len(images) != len(labels):
            raise ValueError(f'{len(images)} images but {len(labels)} labels')
        self._arrays = (images, labels)
        super().__init__(
            ann_file='',
            metainfo=dict(classes=FASHION_MNIST_CLASSES),
            pipeline=list(pipeline))

    def load_data_list(self) -> List[dict]:
        images, labels = self._arrays
        return [
            dict(img=np.repeat(img[..., None], 3, axis=2), gt_label=int(lab))
            for img, lab in zip(images, labels)
        ]


def load_tool(path: str, name: str):
    """Import a tool script (tools are not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def mosaic_command(setting: Setting, out_dir: str,
                   data_root: str) -> List[str]:
    """The ``make_mosaic_data.py`` arguments of this setting's mosaics."""
    return [
        out_dir, '--source', 'fashion-mnist', '--data-root', data_root,
        '--num-train', str(setting.num_train), '--num-val',
        str(setting.num_val), '--canvas', str(setting.canvas), '--item-size',
        *map(str, setting.item_size), '--max-items', str(setting.max_items),
        '--imbalance', str(setting.imbalance), '--seed', '0'
    ]


def make_mosaics(setting: Setting, work_dir: str, data_root: str) -> dict:
    """Write the mosaics with ``tools/misc/make_mosaic_data.py`` (once)."""
    out = osp.join(work_dir, 'mosaics')
    args = mosaic_command(setting, out, data_root)
    stamp = osp.join(out, 'command.json')
    if osp.isfile(stamp):
        with open(stamp) as f:
            done = json.load(f)
        if done['args'] == args:
            return done['summary']
    tool = load_tool(osp.join(ROOT, 'tools', 'misc', 'make_mosaic_data.py'),
                     'make_mosaic_data')
    summary = tool.main(args)
    with open(stamp, 'w') as f:
        json.dump(dict(args=args, summary=summary), f)
    return summary


# ------------------------------------------------------------------ runners


class MetricHistory(Hook):
    """Keeps every validation result with its epoch."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.history: List[dict] = []

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self.history.append(dict(epoch=runner.epoch, **(metrics or {})))


def _runner(setting: Setting, work_dir: str, model: dict, train_loader: dict,
            val_loader: dict, evaluator: dict, epochs: int, lr: float,
            head_lr_mult: float, seed: int, save: bool, name: str,
            hooks: Sequence[dict] = ()) -> Tuple[Runner, MetricHistory]:
    """An mmengine Runner with the paper's optimiser and schedule."""
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


def _loader(setting: Setting, dataset, batch: int, train: bool) -> dict:
    return dict(
        batch_size=batch,
        num_workers=setting.num_workers,
        persistent_workers=setting.num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=train,
        sampler=dict(type='DefaultSampler', shuffle=train),
        dataset=dataset)


def _model(setting: Setting, head: dict,
           checkpoint: Optional[str] = None) -> dict:
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


@torch.no_grad()
def features(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Pooled backbone features of grey uint8 images, (N, D)."""
    model.eval()
    out = []
    for start in range(0, len(images), 512):
        chunk = torch.from_numpy(images[start:start + 512])
        chunk = chunk[:, None].expand(-1, 3, -1, -1)
        data = model.data_preprocessor(dict(inputs=chunk), False)
        out.append(model.extract_feat(data['inputs'])[-1].float().cpu())
    return torch.cat(out).numpy()


def linear_probe(train_x: np.ndarray, train_y: np.ndarray,
                 test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Top-1 accuracy (%) of a logistic regression on frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(),
                        LogisticRegression(C=1.0, max_iter=3000))
    clf.fit(train_x, train_y)
    return 100.0 * float((clf.predict(test_x) == test_y).mean())


def run_stamp() -> dict:
    """When a run finished and the 1-min load average then: the report
    says whether other jobs shared the machine (times are then inflated)."""
    return dict(finished=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
                load1=os.getloadavg()[0])


#: The Setting fields a pretraining run depends on.
PRETRAIN_FIELDS = ('backbone', 'feat_channels', 'pretrain_images',
                   'pretrain_test', 'pretrain_epochs', 'pretrain_batch',
                   'pretrain_lr', 'weight_decay', 'few_shot', 'num_workers')


class Benchmark:
    """Runs and caches the pretraining and fine-tuning runs.

    Args:
        setting (Setting): Sizes and schedules.
        work_dir (str): Where data, checkpoints, logs and results go.
        data_root (str): Fashion-MNIST IDX folder.
        fresh (bool): Ignore cached results.
    """

    def __init__(self, setting: Setting, work_dir: str, data_root: str,
                 fresh: bool = False) -> None:
        self.setting = setting
        self.work_dir = work_dir
        self.data_root = data_root
        os.makedirs(work_dir, exist_ok=True)
        self.results_path = osp.join(work_dir, 'results.json')
        self.results: Dict[str, dict] = {}
        if osp.isfile(self.results_path) and not fresh:
            with open(self.results_path) as f:
                self.results = json.load(f)
        self.mosaics = make_mosaics(setting, work_dir, data_root)
        self.mosaic_dir = self.mosaics['out_dir']
        train = load_fashion_mnist(data_root, 'train')
        test = load_fashion_mnist(data_root, 'test')
        self.fashion = (train[0][:setting.pretrain_images],
                        train[1][:setting.pretrain_images],
                        test[0][:setting.pretrain_test],
                        test[1][:setting.pretrain_test])
        pool = digits_item_pool()
        side = train[0].shape[1]  # digits are shown at Fashion-MNIST's size
        self.digits = (
            np.stack([resize_item(img, side) for img in pool.train_images]),
            pool.train_labels,
            np.stack([resize_item(img, side)
                      for img in pool.held_out_images]),
            pool.held_out_labels)

    def _key(self, kind: str, name: str, cfg: dict, seed: int) -> str:
        """Cache key: the run, its seed and a digest of all it depends on
        (pretraining does not depend on the fine-tuning fields, so a
        fine-tuning variant reuses the pretrained backbones)."""
        setting = dataclasses.asdict(self.setting)
        if kind == 'pretrain':
            setting = {k: setting[k] for k in PRETRAIN_FIELDS}
        blob = json.dumps([setting, cfg], sort_keys=True, default=str)
        digest = hashlib.sha1(blob.encode()).hexdigest()[:10]
        return f'{kind}|{name}|seed{seed}|{digest}'

    def _save(self) -> None:
        tmp = self.results_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.results, f, indent=1)
        os.replace(tmp, self.results_path)

    def pretrain(self, name: str, head: dict, seed: int) -> dict:
        """Single-label pretraining, its test accuracy and linear probes."""
        key = self._key('pretrain', name, head, seed)
        ckpt_dir = osp.join(self.work_dir, 'pretrain', f'{name}_seed{seed}')
        ckpt = osp.join(ckpt_dir, f'epoch_{self.setting.pretrain_epochs}.pth')
        if key in self.results and osp.isfile(ckpt):
            return self.results[key]
        s = self.setting
        train_x, train_y, test_x, test_y = self.fashion
        runner, history = _runner(
            s, ckpt_dir, _model(s, head),
            _loader(s, ArrayDataset(train_x, train_y), s.pretrain_batch,
                    True),
            _loader(s, ArrayDataset(test_x, test_y), 512, False),
            dict(type='Accuracy', topk=(1, )), s.pretrain_epochs,
            s.pretrain_lr, 1.0, seed, True, f'pretrain_{name}_{seed}')
        start = time.perf_counter()
        runner.train()
        seconds = time.perf_counter() - start
        model = runner.model
        d_train_x, d_train_y, d_test_x, d_test_y = self.digits
        f_train, f_test = features(model, d_train_x), features(model,
                                                               d_test_x)
        rng = np.random.default_rng(seed)
        shots = np.concatenate([
            rng.choice(np.flatnonzero(d_train_y == c), s.few_shot,
                       replace=False) for c in range(NUM_CLASSES)
        ])
        result = dict(
            loss=name,
            seed=seed,
            seconds=seconds,
            fashion_top1=history.history[-1]['accuracy/top1'],
            digits_probe=linear_probe(f_train, d_train_y, f_test, d_test_y),
            digits_few_shot=linear_probe(f_train[shots], d_train_y[shots],
                                         f_test, d_test_y),
            checkpoint=ckpt,
            **run_stamp())
        self.results[key] = result
        self._save()
        print(f'[pretrain] {name:10s} seed {seed}: Fashion-MNIST top-1 '
              f'{result["fashion_top1"]:.2f}, digits probe '
              f'{result["digits_probe"]:.2f} ({s.few_shot}-shot '
              f'{result["digits_few_shot"]:.2f}), {seconds:.0f} s',
              flush=True)
        return result

    def finetune(self, name: str, loss: dict, seed: int,
                 checkpoint: str) -> dict:
        """Multi-label fine-tuning on the mosaics with one loss."""
        key = self._key('finetune', name, loss, seed)
        if key in self.results:
            return self.results[key]
        s = self.setting
        dataset = dict(type='CocoMultiLabel', data_root=self.mosaic_dir)
        train_set = dict(
            dataset,
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img_path='train'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                dict(type='PackInputs')
            ])
        val_set = dict(
            dataset,
            ann_file='annotations/instances_val.json',
            data_prefix=dict(img_path='val'),
            test_mode=True,
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='PackInputs')])
        head = dict(type='TwoWayLinearClsHead', num_classes=NUM_CLASSES,
                    in_channels=s.feat_channels, loss=loss)
        slug = ''.join(c if c.isalnum() else '_' for c in name)
        runner, history = _runner(
            s, osp.join(self.work_dir, 'finetune', f'{slug}_seed{seed}'),
            _model(s, head, checkpoint),
            _loader(s, train_set, s.batch, True),
            _loader(s, val_set, 256, False),
            dict(type='MultiLabelMAP'), s.epochs, s.lr, 10.0, seed, False,
            f'finetune_{slug}_{seed}', LOSS_HOOKS.get(loss['type'], ()))
        start = time.perf_counter()
        runner.train()
        seconds = time.perf_counter() - start
        curve = [
            dict(epoch=h['epoch'],
                 map_class=h['multi-label/mAP@class'],
                 map_sample=h['multi-label/mAP@sample'])
            for h in history.history
        ]
        result = dict(loss=name, seed=seed, seconds=seconds, curve=curve,
                      map_class=curve[-1]['map_class'],
                      map_sample=curve[-1]['map_sample'], **run_stamp())
        self.results[key] = result
        self._save()
        print(f'[finetune] {name:24s} seed {seed}: mAP@class '
              f'{result["map_class"]:.2f}, mAP@sample '
              f'{result["map_sample"]:.2f}, {seconds:.0f} s', flush=True)
        return result


# ------------------------------------------------------------------ report


def mean_std(values: Sequence[float]) -> str:
    """``mean ± std`` (sample std over seeds) with two decimals."""
    values = np.asarray(values, float)
    std = values.std(ddof=1) if len(values) > 1 else float('nan')
    return f'{values.mean():.2f} ± {std:.2f}'


def plot_curves(finetunes: Dict[str, List[dict]], path: str,
                title: str) -> None:
    """Both metrics per epoch for every loss: mean over seeds, ± std band."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, runs in finetunes.items():
        epochs = [c['epoch'] for c in runs[0]['curve']]
        for ax, metric in zip(axes, ('map_class', 'map_sample')):
            values = np.array([[c[metric] for c in r['curve']] for r in runs])
            mean, std = values.mean(0), values.std(0)
            lw = 2.6 if name == 'two-way' else 1.4
            ax.plot(epochs, mean, marker='o', ms=3, lw=lw, label=name)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.15)
    for ax, label in zip(axes, ('mAP@class (%)', 'mAP@sample (%)')):
        ax.set_xlabel('epoch')
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc='lower right')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_info() -> Dict[str, str]:
    """CPU/GPU model, cores, torch and commit, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [ln.split(':', 1)[1].strip() for ln in f
                     if ln.startswith('model name')]
        cpu = f'{names[0]} x{len(names)}' if names else cpu
    except OSError:
        pass
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f'CPU only, torch threads: {torch.get_num_threads()}')
    try:
        commit = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
            capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = 'unknown'
    return dict(cpu=cpu, device=device, torch=torch.__version__,
                python=platform.python_version(), commit=commit or 'unknown')


def paired_deltas(finetunes: Dict[str, List[dict]], metric: str,
                  reference: str = 'two-way') -> Dict[str, str]:
    """``reference`` minus each loss, seed by seed (the runs of one seed
    share the backbone, the head initialisation and the batch order), as
    ``mean ± std``."""
    if reference not in finetunes:
        return {}
    ref = {r['seed']: r[metric] for r in finetunes[reference]}
    deltas = {}
    for name, runs in finetunes.items():
        pairs = [ref[r['seed']] - r[metric] for r in runs if r['seed'] in ref]
        if name != reference and pairs:
            deltas[name] = mean_std(pairs)
    return deltas


def describe_backbone(setting: Setting) -> str:
    """One line about the network."""
    b = setting.backbone
    return (f'`{b["type"]}` depth {b.get("depth")}, width '
            f'{b.get("base_channels")}, stage strides '
            f'{tuple(b.get("strides", (1, 2, 2, 2)))} '
            f'({setting.feat_channels}-d features)')


def render(setting: Setting, mosaics: dict, pretrains: Dict[str, List[dict]],
           finetunes: Dict[str, List[dict]], missing: Dict[str, str],
           info: dict, plot_name: str) -> str:
    """The markdown of the results (between the markers)."""
    s = setting
    runs = [r for group in (pretrains, finetunes) for rs in group.values()
            for r in rs]
    loads = [r['load1'] for r in runs if 'load1' in r]
    stamps = sorted(r['finished'] for r in runs if 'finished' in r)
    load_line = (f'1-min load average when each run finished: '
                 f'{min(loads):.1f} to {max(loads):.1f} (median '
                 f'{np.median(loads):.1f}) on {os.cpu_count()} cores'
                 if loads else 'load average not recorded')
    lines = [
        BEGIN,
        f'<!-- generated by tools/benchmark/loss_benchmark.py '
        f'({s.name} setting); edit the code, not this block -->',
        '',
        f'Command: `{info["command"]}`  ',
        f'Date: {stamps[0] if stamps else "?"} to '
        f'{stamps[-1] if stamps else info["date"]} (runs finished); '
        f'{sum(r["seconds"] for r in runs) / 60:.1f} min of training and '
        f'evaluation in {len(runs)} runs, plus data preparation and linear '
        'probes.  ',
        f'Machine: {info["cpu"]}; {info["device"]}; torch {info["torch"]}, '
        f'Python {info["python"]}, commit {info["commit"]}.  ',
        f'{load_line}.',
        '',
        f'Setting `{s.name}`, {s.seeds} seeds. Backbone: '
        f'{describe_backbone(s)}.  ',
        f'Pretraining: {s.pretrain_images} Fashion-MNIST train images, '
        f'{s.pretrain_epochs} epochs, batch {s.pretrain_batch}, lr '
        f'{s.pretrain_lr}, from scratch; scored on {s.pretrain_test} test '
        'images.  ',
        f'Mosaics: {mosaics["train"]["images"]} train / '
        f'{mosaics["val"]["images"]} val, {s.canvas}x{s.canvas} px, items '
        f'{s.item_size[0]}-{s.item_size[1]} px, 1-{s.max_items} items, '
        f'class imbalance {s.imbalance:g}, '
        f'{mosaics["train"]["labels_per_image"]:.2f} / '
        f'{mosaics["val"]["labels_per_image"]:.2f} labels per image.  ',
        f'Fine-tuning: {s.epochs} epochs, batch {s.batch}, buckets of M = '
        f'{s.bucket}, SGD Nesterov momentum 0.9, weight decay '
        f'{s.weight_decay:g}, lr {s.lr:g} backbone / {10 * s.lr:g} '
        'classifier, cosine per iteration, AMP on GPU only; the same for '
        'every loss.',
        '',
        '### Multi-label fine-tuning (Table 7 in miniature)',
        '',
        f'Fashion-MNIST mosaics, last epoch, mean ± std over {s.seeds} '
        'seeds (%). "two-way minus": the paired difference to the two-way '
        'loss, seed by seed (positive: two-way is better).',
        '',
        '| loss | mAP@class | mAP@sample | two-way minus, @class | '
        'two-way minus, @sample | s / run |',
        '|---|---|---|---|---|---|',
    ]
    d_class = paired_deltas(finetunes, 'map_class')
    d_sample = paired_deltas(finetunes, 'map_sample')
    for name, runs_ in finetunes.items():
        lines.append(
            f'| {name} | {mean_std([r["map_class"] for r in runs_])} | '
            f'{mean_std([r["map_sample"] for r in runs_])} | '
            f'{d_class.get(name, "—")} | {d_sample.get(name, "—")} | '
            f'{np.mean([r["seconds"] for r in runs_]):.0f} |')
    for name in missing:
        if not name.startswith('pretrain '):
            lines.append(f'| {name} | not run | not run | — | — | — |')
    if missing:
        lines += [''] + [f'- {name}: not available here ({why}).'
                         for name, why in missing.items()]
    lines += [
        '',
        f'![mAP@class and mAP@sample per epoch]({plot_name})',
        '',
        '### Single-label pretraining and linear-probe transfer '
        '(Table 8 in miniature)',
        '',
        f'Top-1 accuracy (%), mean ± std over {s.seeds} seeds. '
        '"Fashion-MNIST" scores the pretrained classifier itself on test '
        'images; the digit columns fit a logistic regression on frozen '
        "pooled features of scikit-learn's digits (8x8 scans upscaled to "
        '28x28; fixed train / held-out split of the 1797 scans: 1198 / '
        f'599), with all train scans or {s.few_shot} per class.',
        '',
        f'| pretraining loss | Fashion-MNIST | digits, linear probe | '
        f'digits, {s.few_shot}-shot probe | s / run |',
        '|---|---|---|---|---|',
    ]
    for name, runs_ in pretrains.items():
        lines.append(
            f'| {name} | {mean_std([r["fashion_top1"] for r in runs_])} | '
            f'{mean_std([r["digits_probe"] for r in runs_])} | '
            f'{mean_std([r["digits_few_shot"] for r in runs_])} | '
            f'{np.mean([r["seconds"] for r in runs_]):.0f} |')
    seeds = sorted({r['seed'] for r in runs})
    lines += [
        '', 'Per seed (mAP@class / mAP@sample; top-1 / digits probe / '
        'few-shot probe):', '',
        '| run | ' + ' | '.join(f'seed {i}' for i in seeds) + ' |',
        '|---|' + '---|' * len(seeds)
    ]
    for name, runs_ in finetunes.items():
        by_seed = {r['seed']: r for r in runs_}
        lines.append(f'| fine-tune, {name} | ' + ' | '.join(
            f'{by_seed[i]["map_class"]:.2f} / {by_seed[i]["map_sample"]:.2f}'
            if i in by_seed else '—' for i in seeds) + ' |')
    for name, runs_ in pretrains.items():
        by_seed = {r['seed']: r for r in runs_}
        lines.append(f'| pretrain, {name} | ' + ' | '.join(
            f'{by_seed[i]["fashion_top1"]:.2f} / '
            f'{by_seed[i]["digits_probe"]:.2f} / '
            f'{by_seed[i]["digits_few_shot"]:.2f}'
            if i in by_seed else '—' for i in seeds) + ' |')
    lines += ['', END]
    return '\n'.join(lines)


DOC_HEADER = """# Benchmarks

Results of `tools/benchmark/loss_benchmark.py` (the paper's protocol in
miniature on Fashion-MNIST, offline).

"""


def write_doc(path: str, block: str) -> None:
    """Replace the generated block of ``path`` (create the file if needed),
    keeping everything outside the markers."""
    text = DOC_HEADER + BEGIN + '\n' + END + '\n'
    if osp.isfile(path):
        with open(path) as f:
            text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:
        head, tail = text.rstrip('\n') + '\n\n', '\n'
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(head + block + tail)


# -------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Two-way loss vs other multi-label losses on Fashion-'
        'MNIST mosaics, and Table-8-style transfer (see docs/benchmark.md).')
    size = parser.add_mutually_exclusive_group()
    size.add_argument('--quick', action='store_true',
                      help='tiny smoke run (under a minute)')
    size.add_argument('--gpu', action='store_true',
                      help='bigger data and network, for a GPU')
    parser.add_argument('--seeds', type=int,
                        help='number of seeds (default: the setting\'s)')
    parser.add_argument('--losses', nargs='+', metavar='NAME',
                        help='fine-tune only these losses (display names)')
    parser.add_argument('--epochs', type=int,
                        help='fine-tuning epochs (default: the setting\'s)')
    parser.add_argument('--lr', type=float,
                        help='fine-tuning backbone lr; the classifier gets '
                        '10x (default: the setting\'s)')
    parser.add_argument('--work-dir', help='default work_dirs/loss_benchmark'
                        '_<setting>')
    parser.add_argument('--out', default=osp.join(ROOT, 'docs',
                                                  'benchmark.md'),
                        help='markdown report (default docs/benchmark.md)')
    parser.add_argument('--data-root', default=FASHION_MNIST_ROOT,
                        help='Fashion-MNIST IDX folder (default '
                        f'{FASHION_MNIST_ROOT})')
    parser.add_argument('--fresh', action='store_true',
                        help='retrain everything, ignoring cached results')
    parser.add_argument(
        '--threads', type=int,
        help='torch CPU threads (default: torch\'s choice); 1 is much faster '
        'than 2 when other jobs keep the cores busy')
    args = parser.parse_args(argv)
    for name in ('seeds', 'epochs'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1')
    if args.lr is not None and args.lr <= 0:
        parser.error('--lr must be > 0')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be >= 1')
    return args


def resolve(args: argparse.Namespace) -> Tuple[Setting, str]:
    """The setting with the command line's overrides, and the work dir.

    Args:
        args (argparse.Namespace): From :func:`parse_args`.

    Returns:
        tuple[Setting, str]: A copy of the chosen setting, and
        ``--work-dir`` or ``work_dirs/loss_benchmark_<setting>``.
    """
    name = 'quick' if args.quick else 'gpu' if args.gpu else 'default'
    setting = copy.deepcopy(SETTINGS[name])
    for field in ('seeds', 'epochs', 'lr'):
        if getattr(args, field) is not None:
            setattr(setting, field, getattr(args, field))
    work_dir = args.work_dir or osp.join(ROOT, 'work_dirs',
                                         f'loss_benchmark_{name}')
    return setting, work_dir


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark and write the report; return the aggregated
    results (``pretrain`` and ``finetune``: name -> list of per-seed
    results, ``missing``: name -> reason)."""
    args = parse_args(argv)
    setting, work_dir = resolve(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    losses = finetune_losses(setting)
    if args.losses:
        # Checked before any data is built: a typo fails at once.
        unknown = sorted(set(args.losses) - set(losses))
        if unknown:
            raise SystemExit(f'--losses: unknown {unknown}; choose from '
                             f'{sorted(losses)}')
        losses = {k: v for k, v in losses.items() if k in args.losses}
    start = time.perf_counter()
    bench = Benchmark(setting, work_dir, args.data_root, args.fresh)
    missing = {k: why for k, v in losses.items()
               if (why := unavailable(v)) is not None}
    heads = pretrain_heads(setting)
    for head_name, head in heads.items():
        if (why := unavailable(head['loss'])) is not None:
            missing[f'pretrain {head_name}'] = why
    for key in missing:
        print(f'[skip] {key}: {missing[key]}', flush=True)

    pretrains: Dict[str, List[dict]] = {}
    finetunes: Dict[str, List[dict]] = {}
    for seed in range(setting.seeds):
        # softmax first: it is the backbone every loss fine-tunes
        for head_name, head in heads.items():
            if f'pretrain {head_name}' not in missing:
                pretrains.setdefault(head_name, []).append(
                    bench.pretrain(head_name, head, seed))
        ckpt = pretrains['softmax'][-1]['checkpoint']
        for loss_name, loss in losses.items():
            if loss_name not in missing:
                finetunes.setdefault(loss_name, []).append(
                    bench.finetune(loss_name, loss, seed, ckpt))

    out_dir = osp.dirname(osp.abspath(args.out))
    plot_name = osp.splitext(osp.basename(args.out))[0] + '_curves.png'
    plot_curves(finetunes, osp.join(out_dir, plot_name),
                f'Fashion-MNIST mosaics, {setting.name} setting: mean ± std '
                f'over {setting.seeds} seeds')
    info = machine_info()
    info.update(
        command=shlex.join(['python', 'tools/benchmark/loss_benchmark.py',
                            *(argv if argv is not None else sys.argv[1:])]),
        date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        minutes=(time.perf_counter() - start) / 60)
    write_doc(args.out, render(setting, bench.mosaics, pretrains, finetunes,
                               missing, info, plot_name))
    print(f'loss_benchmark: wrote {args.out} and {plot_name} in '
          f'{info["minutes"]:.1f} min', flush=True)
    return dict(pretrain=pretrains, finetune=finetunes, missing=missing)


if __name__ == '__main__':
    main()
