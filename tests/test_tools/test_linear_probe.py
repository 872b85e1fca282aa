"""tools/linear_probe.py end to end, and the nine probe configs.

A tiny ResNet-18 (16 base channels) is trained for one epoch (2 iterations)
by the real ImageNet config and Runner; its checkpoint is then probed on an
Oxford-IIIT Pets fixture in the original layout (real scikit-learn digit
images) by the tool, through tools/train.py. The frozen backbone must come
out bit-identical to the ImageNet checkpoint while the classifier learns.
"""
import inspect
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS as REGISTRY
from PIL import Image
from sklearn.datasets import load_digits

import mmtwoway_stack_fixes  # noqa: F401  (allowlists mmengine checkpoints)
from mmtwoway.utils.runtime import adapt_to_machine
from tools import linear_probe

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = {  # a ResNet-18 with 16 base channels: 128-d features
    'model.backbone.depth': 18,
    'model.backbone.base_channels': 16,
    'model.backbone.stem_channels': 16,
    'model.head.in_channels': 128,
}
SMALL_INPUT = {  # the configs' pipelines at 64 px instead of 224
    'train_dataloader.dataset.pipeline.0.scale': 64,
    'val_dataloader.dataset.pipeline.0.resize': 72,
    'val_dataloader.dataset.pipeline.0.crop_size': 64,
}
DATASETS = {  # dataset type, classes, train split, test split
    'aircraft': ('FGVCAircraft', 100, 'trainval', 'test'),
    'caltech101': ('Caltech101', 102, 'train', 'test'),
    'cars': ('StanfordCars', 196, 'train', 'test'),
    'cub': ('CUB', 200, 'train', 'test'),
    'dtd': ('DTD', 47, 'trainval', 'test'),
    'flowers102': ('Flowers102', 102, 'trainval', 'test'),
    'food101': ('Food101', 101, 'train', 'test'),
    'pets': ('OxfordIIITPet', 37, 'trainval', 'test'),
    'sun397': ('SUN397', 397, 'train', 'test'),
}


def load_tool():
    return linear_probe


def save_digit(index, path):
    pixels = (load_digits().images[index] * 255 / 16).astype(np.uint8)
    Image.fromarray(pixels).convert('RGB').resize((48, 40)).save(path)


@pytest.fixture(scope='module')
def imagenet_checkpoint(tmp_path_factory):
    """Checkpoint and top-1 of a real 2-iteration ImageNet-config run."""
    root = tmp_path_factory.mktemp('imagenet')
    (root / 'meta').mkdir()
    for split in ('train', 'val'):
        (root / split).mkdir()
        for i in range(4):
            save_digit(i, root / split / f'{i}.JPEG')
        (root / 'meta' / f'{split}.txt').write_text(''.join(
            f'{i}.JPEG {i % 2}\n' for i in range(4)))
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'imagenet', 'twoway_in1k_r50.py'))
    cfg.merge_from_dict({**TINY, **SMALL_INPUT,
                         'model.head.loss.bucket_size': 2})
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].update(batch_size=2, num_workers=0)
        cfg[name].dataset.data_root = str(root)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.param_scheduler.update(T_max=1, end=1)
    cfg.work_dir = str(tmp_path_factory.mktemp('tiny_in1k'))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(adapt_to_machine(cfg))
        runner.train()
    finally:
        torch.set_num_threads(threads)
    top1 = runner.message_hub.get_scalar('val/accuracy/top1').current()
    return osp.join(cfg.work_dir, 'epoch_1.pth'), top1


@pytest.fixture(scope='module')
def pets_parent(tmp_path_factory):
    """Two Pets classes in the original layout, under the config's folder."""
    parent = tmp_path_factory.mktemp('data')
    root = parent / 'Oxford-IIIT_Pets'
    (root / 'images').mkdir(parents=True)
    (root / 'annotations').mkdir()
    breeds = [('Abyssinian', 1, 1), ('american_bulldog', 2, 2)]
    for split, offset in (('trainval', 0), ('test', 20)):
        lines = []
        for n in range(2):
            for breed, class_id, species in breeds:
                name = f'{breed}_{offset + n + 1}'
                save_digit(offset + n * 2 + class_id, root / 'images' /
                           f'{name}.jpg')
                # <image> <class id> <species> <breed id>, as in list.txt
                lines.append(f'{name} {class_id} {species} {n + 1}\n')
        (root / 'annotations' / f'{split}.txt').write_text(''.join(lines))
    return parent


def backbone_state(path):
    state = torch.load(path, map_location='cpu',
                       weights_only=True)['state_dict']
    return {k: v for k, v in state.items() if k.startswith('backbone.')}


def test_probe_trains_only_the_classifier_and_prints_the_row(
        imagenet_checkpoint, pets_parent, tmp_path, capfd, monkeypatch):
    checkpoint, imagenet_top1 = imagenet_checkpoint
    work = tmp_path / 'probes'
    options = {**TINY, **SMALL_INPUT,
               'train_dataloader.batch_size': 2,
               'val_dataloader.batch_size': 2,
               'train_dataloader.num_workers': 0,
               'val_dataloader.num_workers': 0,
               'train_cfg.max_epochs': 2,
               'train_cfg.val_interval': 2,
               'param_scheduler.T_max': 2,
               'param_scheduler.end': 2,
               'default_hooks.checkpoint.interval': 1,
               'default_hooks.checkpoint.max_keep_ckpts': 2}
    # In-process tool (its train.py runs are subprocesses); capfd sees both.
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    code = load_tool().main(
        [checkpoint, '--datasets', 'pets', '--data-root', str(pets_parent),
         '--work-dir', str(work), '--name', 'tiny', '--cfg-options'] +
        [f'{k}={v}' for k, v in options.items()])
    captured = capfd.readouterr()
    out = captured.out + captured.err
    assert code == 0, out[-4000:]

    # the Pets column is the test accuracy logged at the end of training
    logged = re.findall(r'accuracy/top1: ([\d.]+)', out)
    assert logged, out[-3000:]
    row = re.search(r'^\| tiny \| (\S+) \| (\S+) \|$', out, re.M)
    assert '| Model | ImageNet | Pets |' in out and row, out[-2000:]
    assert float(row.group(1)) == pytest.approx(imagenet_top1, abs=0.006)
    assert float(row.group(2)) == pytest.approx(float(logged[-1]),
                                                abs=0.006)

    # frozen: every backbone tensor (BN statistics included) is ImageNet's
    first, last = work / 'pets' / 'epoch_1.pth', work / 'pets' / 'epoch_2.pth'
    source, probed = backbone_state(checkpoint), backbone_state(last)
    assert source.keys() == probed.keys() and len(source) > 50
    for key in source:
        assert torch.equal(source[key], probed[key]), key
    # ... while the linear classifier (37 Pets classes) learns
    heads = [torch.load(p, map_location='cpu', weights_only=True)
             ['state_dict']['head.fc.weight'] for p in (first, last)]
    assert heads[0].shape == (37, 128)
    assert not torch.equal(heads[0], heads[1])

    # --collect-only rebuilds the same table from the work dirs
    tool = load_tool()
    assert tool.last_metric(str(work / 'pets')) == pytest.approx(
        float(row.group(2)), abs=0.006)


def test_a_checkpoint_of_another_backbone_is_refused(imagenet_checkpoint):
    tool = load_tool()
    # the tiny ResNet-18 checkpoint, probed without the TINY overrides
    with pytest.raises(SystemExit, match='does not fit the probe backbone'):
        tool.main([imagenet_checkpoint[0], '--datasets', 'dtd'])


def test_dry_run_prints_one_command_per_dataset(capsys, tmp_path):
    tool = load_tool()
    assert tool.main(['ckpt/in1k.pth', '--dry-run', '--data-root', 'sets',
                      '--work-dir', str(tmp_path), '--cfg-options',
                      'train_cfg.max_epochs=5']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 9
    for line, key in zip(lines, DATASETS):
        assert f'linear_r50_{key}.py' in line
        assert f'--work-dir {tmp_path / key}' in line
        assert 'init_cfg.checkpoint=' + osp.abspath('ckpt/in1k.pth') in line
        assert line.endswith('train_cfg.max_epochs=5')
    assert osp.join(osp.abspath('sets'), 'dtd') in lines[4]


def test_markdown_row_marks_missing_results():
    tool = load_tool()
    text = tool.markdown_row('softmax', {'aircraft': 39.18, 'dtd': None},
                             76.32)
    assert text.splitlines() == [
        '| Model | ImageNet | Aircraft | DTD |', '|---|---|---|---|',
        '| softmax | 76.32 | 39.18 | - |'
    ]


@pytest.mark.parametrize('key', list(DATASETS))
def test_probe_configs_use_mmpretrain_datasets_on_a_frozen_backbone(key):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'linear_probe', f'linear_r50_{key}.py'))
    dataset, classes, train_split, test_split = DATASETS[key]
    assert cfg.train_dataloader.dataset.type == dataset
    assert cfg.train_dataloader.dataset.split == train_split
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == dataset
        assert loader.dataset.split == test_split
    assert cfg.model.head.num_classes == classes
    assert cfg.model.head.type == 'LinearClsHead'
    backbone = cfg.model.backbone
    assert backbone.frozen_stages == 4 and backbone.norm_eval
    assert backbone.init_cfg.prefix == 'backbone'
    assert cfg.train_cfg.val_interval == cfg.train_cfg.max_epochs
    assert cfg.val_evaluator.type == 'Accuracy'
    # mmpretrain's class takes these arguments (the files are not here)
    params = inspect.signature(REGISTRY.get(dataset)).parameters
    assert {'data_root', 'split', 'pipeline'} <= set(params) or (
        {'data_root', 'split', 'kwargs'} <= set(params))
