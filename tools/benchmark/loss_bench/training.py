"""The loss benchmark's runs: the cached training loop and linear probes.

:class:`Benchmark` trains, with the configs of :mod:`.configs`, through
what mmtwoway ships (the mmengine ``Runner``, mmpretrain's
``ImageClassifier``, ``CocoMultiLabel``, ``TwoWayLinearClsHead``,
``MultiLabelMAP``) and caches every finished run in
``WORK_DIR/results.json`` under a key that digests all the run depends on;
:func:`run_all` runs a whole setting.
"""
import dataclasses
import datetime
import hashlib
import json
import os
import os.path as osp
import time
from typing import Dict, List

import numpy as np
import torch

from tools.misc import mosaic_data
from .configs import build_runner, loader_config, model_config
from .data import NUM_CLASSES, ArrayDataset, digit_arrays, fashion_arrays
from .settings import (LOSS_HOOKS, PRETRAIN_FIELDS, Setting, mosaic_command,
                       pretrain_heads, unavailable)


@torch.no_grad()
def features(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Pooled backbone features of grey images.

    Args:
        model (torch.nn.Module): An ``ImageClassifier``.
        images (np.ndarray): (N, h, w) uint8 grey images.

    Returns:
        np.ndarray: (N, D) float32 features.
    """
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
    """Top-1 accuracy of a logistic regression on frozen features.

    Args:
        train_x (np.ndarray): (N, D) train features.
        train_y (np.ndarray): (N,) train labels.
        test_x (np.ndarray): (M, D) test features.
        test_y (np.ndarray): (M,) test labels.

    Returns:
        float: Top-1 accuracy on the test features, in %.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(),
                        LogisticRegression(C=1.0, max_iter=3000))
    clf.fit(train_x, train_y)
    return 100.0 * float((clf.predict(test_x) == test_y).mean())


def run_stamp() -> dict:
    """When a run finished and the 1-min load average then: the report
    says whether other jobs shared the machine (times are then inflated).

    Returns:
        dict: ``finished`` (local time) and ``load1``.
    """
    return dict(finished=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
                load1=os.getloadavg()[0])


def make_mosaics(setting: Setting, work_dir: str, data_root: str) -> dict:
    """Write the setting's mosaics to ``WORK_DIR/mosaics`` (once).

    ``mosaics/command.json`` stores the equivalent ``make_mosaic_data.py``
    arguments (:func:`~.settings.mosaic_command`) with the summary; when
    they match, the mosaics on disk are reused.

    Args:
        setting (Setting): Gives the mosaic sizes.
        work_dir (str): The benchmark's work dir.
        data_root (str): Fashion-MNIST IDX folder.

    Returns:
        dict: The summary of :func:`tools.misc.mosaic_data.run`.
    """
    out = osp.join(work_dir, 'mosaics')
    args = mosaic_command(setting, out, data_root)
    stamp = osp.join(out, 'command.json')
    if osp.isfile(stamp):
        with open(stamp) as f:
            done = json.load(f)
        if done['args'] == args:
            return done['summary']
    # The stamped arguments are the mosaic tool's: run exactly its code.
    summary = mosaic_data.run(mosaic_data.parse_args(args), prog='mosaics')
    with open(stamp, 'w') as f:
        json.dump(dict(args=args, summary=summary), f)
    return summary


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
        self.fashion = fashion_arrays(data_root, setting.pretrain_images,
                                      setting.pretrain_test)
        # digits are shown at Fashion-MNIST's size
        self.digits = digit_arrays(self.fashion[0].shape[1])

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
        # written whole, then renamed: an interrupted run keeps the cache
        tmp = self.results_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.results, f, indent=1)
        os.replace(tmp, self.results_path)

    def pretrain(self, name: str, head: dict, seed: int) -> dict:
        """Single-label pretraining, its test accuracy and linear probes.

        Args:
            name (str): Display name of the head.
            head (dict): Head config (:func:`~.settings.pretrain_heads`).
            seed (int): Seed of the run.

        Returns:
            dict: ``loss``, ``seed``, ``seconds``, ``fashion_top1``,
            ``digits_probe``, ``digits_few_shot`` (accuracies in %),
            ``checkpoint``, and :func:`run_stamp`'s fields; from the cache
            if it holds the run and its checkpoint exists.
        """
        key = self._key('pretrain', name, head, seed)
        ckpt_dir = osp.join(self.work_dir, 'pretrain', f'{name}_seed{seed}')
        ckpt = osp.join(ckpt_dir, f'epoch_{self.setting.pretrain_epochs}.pth')
        if key in self.results and osp.isfile(ckpt):
            return self.results[key]
        s = self.setting
        train_x, train_y, test_x, test_y = self.fashion
        runner, history = build_runner(
            s, ckpt_dir, model_config(s, head),
            loader_config(s, ArrayDataset(train_x, train_y),
                          s.pretrain_batch, True),
            loader_config(s, ArrayDataset(test_x, test_y), 512, False),
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
        """Multi-label fine-tuning on the mosaics with one loss.

        Args:
            name (str): Display name of the loss.
            loss (dict): Loss config (:func:`~.settings.finetune_losses`).
            seed (int): Seed of the run.
            checkpoint (str): The pretrained backbone.

        Returns:
            dict: ``loss``, ``seed``, ``seconds``, ``curve`` (``epoch``,
            ``map_class``, ``map_sample`` per epoch), the last epoch's
            ``map_class`` and ``map_sample`` (%), and :func:`run_stamp`'s
            fields; from the cache if it holds the run.
        """
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
        runner, history = build_runner(
            s, osp.join(self.work_dir, 'finetune', f'{slug}_seed{seed}'),
            model_config(s, head, checkpoint),
            loader_config(s, train_set, s.batch, True),
            loader_config(s, val_set, 256, False),
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


def run_all(setting: Setting, work_dir: str, data_root: str,
            losses: Dict[str, dict], fresh: bool = False) -> dict:
    """Every pretraining and fine-tuning run of a setting, seed by seed.

    For each seed, the heads of :func:`~.settings.pretrain_heads` are
    trained first (softmax first: its backbone is the one every loss
    fine-tunes), then every loss. Losses or heads that cannot be built
    here are reported and skipped.

    Args:
        setting (Setting): Sizes and schedules.
        work_dir (str): Where data, checkpoints, logs and results go.
        data_root (str): Fashion-MNIST IDX folder.
        losses (dict[str, dict]): Display name -> loss config to fine-tune.
        fresh (bool): Retrain everything, ignoring cached results.

    Returns:
        dict: ``pretrain`` and ``finetune`` (name -> list of per-seed
        results of :meth:`Benchmark.pretrain` / :meth:`Benchmark.finetune`),
        ``missing`` (name -> why it was not run; pretraining heads as
        ``'pretrain NAME'``) and ``mosaics`` (the mosaics' summary).
    """
    bench = Benchmark(setting, work_dir, data_root, fresh)
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
        for head_name, head in heads.items():
            if f'pretrain {head_name}' not in missing:
                pretrains.setdefault(head_name, []).append(
                    bench.pretrain(head_name, head, seed))
        ckpt = pretrains['softmax'][-1]['checkpoint']
        for loss_name, loss in losses.items():
            if loss_name not in missing:
                finetunes.setdefault(loss_name, []).append(
                    bench.finetune(loss_name, loss, seed, ckpt))
    return dict(pretrain=pretrains, finetune=finetunes, missing=missing,
                mosaics=bench.mosaics)
