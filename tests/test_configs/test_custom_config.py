"""configs/custom/twoway_custom_r50.py on the demo data written as CSV files
with some labels unknown: the three steps of docs/own_data.md (write the CSV, run
tools/misc/dataset_stats.py, train), the training step through the real
mmengine Runner."""
import csv
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmtwoway  # noqa: F401  (registers everything)
from mmtwoway.utils.runtime import adapt_to_machine

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEMPLATE = osp.join(ROOT, 'configs', 'custom', 'twoway_custom_r50.py')


def run_checked(cmd):
    res = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res.stdout


def coco_to_csv(ann_file: str, out: str, image_folder: str,
                unknown: float, seed: int):
    """Write a COCO instances file as the CSV format, hiding some labels.

    Each (image, class) entry is made unknown with probability ``unknown``;
    the known absent classes go to the ``negatives`` column, so the unknown
    ones are in neither column.

    Returns:
        tuple: the class names, and the (N, C) target (1 / 0 / -1) that the
        CSV encodes, in file order.
    """
    with open(ann_file) as f:
        coco = json.load(f)
    cats = sorted(coco['categories'], key=lambda c: c['id'])
    names = [c['name'] for c in cats]
    index = {c['id']: i for i, c in enumerate(cats)}
    positives = {}
    for ann in coco['annotations']:
        positives.setdefault(ann['image_id'], set()).add(
            index[ann['category_id']])
    rng = np.random.default_rng(seed)
    targets = []
    with open(out, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'labels', 'negatives', 'image_id'])
        for img in sorted(coco['images'], key=lambda i: i['id']):
            target = np.zeros(len(names))
            target[sorted(positives.get(img['id'], ()))] = 1
            target[rng.random(len(names)) < unknown] = -1
            targets.append(target)
            writer.writerow([
                f'{image_folder}/{img["file_name"]}',
                '|'.join(names[c] for c in np.flatnonzero(target == 1)),
                '|'.join(names[c] for c in np.flatnonzero(target == 0)),
                img['id']
            ])
    return names, torch.tensor(np.array(targets), dtype=torch.float32)


@pytest.fixture(scope='module')
def custom_data(tmp_path_factory):
    """The demo data, its two splits as CSV files and classes.txt."""
    root = tmp_path_factory.mktemp('custom')
    run_checked([
        sys.executable,
        osp.join(ROOT, 'tools', 'misc', 'make_demo_data.py'),
        str(root), '--num-train', '8', '--num-val', '4', '--seed', '5'
    ])
    targets = {}
    for split, unknown in (('train', 0.3), ('val', 0.2)):
        names, targets[split] = coco_to_csv(
            str(root / 'annotations' / f'instances_{split}.json'),
            str(root / f'{split}.csv'), split, unknown, seed=len(split))
    # The class file lists the classes in another order than the
    # categories: the CSV's names, not positions, decide the labels.
    order = names[::-1]
    (root / 'classes.txt').write_text('\n'.join(order) + '\n')
    perm = [names.index(n) for n in order]
    return root, order, {k: v[:, perm] for k, v in targets.items()}


def template(root) -> Config:
    """The template with only its "Your data" values set."""
    cfg = Config.fromfile(TEMPLATE)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(root)
    return cfg


def test_dataset_stats_reads_the_template(custom_data, tmp_path):
    root, classes, targets = custom_data
    out = tmp_path / 'stats.json'
    printed = run_checked([
        sys.executable,
        osp.join(ROOT, 'tools', 'misc', 'dataset_stats.py'), TEMPLATE,
        '--out', str(out), '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'
    ])
    assert 'Table 6 row:' in printed
    stats = json.loads(out.read_text())
    for split, key in (('train', 'train'), ('test', 'val')):
        per_class = stats[split]['per_class']
        assert list(per_class) == classes
        target = targets[key]
        for c, name in enumerate(classes):
            assert per_class[name] == dict(
                positives=int((target[:, c] == 1).sum()),
                negatives=int((target[:, c] == 0).sum()),
                ignored=int((target[:, c] == -1).sum()))
        assert stats[split]['missing_images'] == []


def test_template_trains_with_unknown_labels_ignored(custom_data, tmp_path,
                                                     one_thread):
    root, classes, targets = custom_data
    cfg = template(root)
    # What a user must set; here the demo has 10 classes.
    cfg.model.head.num_classes = len(classes)
    cfg.data_preprocessor.num_classes = len(classes)
    # Test-only changes: no ImageNet download, small crops, 2 iterations.
    cfg.model.backbone.init_cfg = None
    cfg.train_dataloader.update(batch_size=4, num_workers=0,
                                persistent_workers=False)
    cfg.val_dataloader.update(batch_size=4, num_workers=0,
                              persistent_workers=False)
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'RandomResizedCrop':
            t.scale = 64
    for t in cfg.val_dataloader.dataset.pipeline:
        if t['type'] == 'ResizeEdge':
            t.scale = 72
        if t['type'] == 'CenterCrop':
            t.crop_size = 64
    cfg.train_dataloader.sampler.shuffle = False
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 2  # validated below, once
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(tmp_path)
    cfg.log_level = 'WARNING'
    adapt_to_machine(cfg)  # AMP -> float32 without CUDA, as tools/train.py
    runner = Runner.from_cfg(cfg)

    seen = []
    runner.model.head.loss_module.register_forward_hook(
        lambda module, args, out: seen.append(
            (args[1].clone(), out.detach().clone())))
    runner.train()

    # Two steps of 4 images, in file order: the loss got the CSV's labels
    # with the unknown entries as -1, and a finite loss.
    assert len(seen) == 2
    target = torch.cat([t for t, _ in seen])
    torch.testing.assert_close(target, targets['train'])
    assert (target == -1).any() and (target == 1).any()
    assert all(torch.isfinite(loss) for _, loss in seen)
    # Validation ran on the val CSV with its unknown entries left out.
    metrics = runner.val_loop.run()
    assert 0 <= metrics['multi-label/mAP@class'] <= 100
    dataset = runner.val_dataloader.dataset
    assert dataset.CLASSES == tuple(classes)
    scores = torch.stack([
        torch.as_tensor(dataset.get_data_info(i)['gt_score'])
        for i in range(len(dataset))
    ])
    torch.testing.assert_close(scores, targets['val'])
    # the extra column is kept in each sample
    assert dataset.get_data_info(0)['image_id'].isdigit()
