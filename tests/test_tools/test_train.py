"""tools/train.py, tools/test.py and tools/dist_train.sh on the demo data.

Real mmengine Runner, real torch.distributed (gloo on the CPU), real files.
"""
import os
import os.path as osp
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import mmtwoway_stack_fixes  # noqa: F401  (allowlists mmengine checkpoints)

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
DEMO_CFG = osp.join(ROOT, 'configs', 'twoway_demo.py')


def run(cmd, cwd=ROOT, timeout=600, env=None):
    env = dict(os.environ, PYTHON=sys.executable, **(env or {}))
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res.stdout + res.stderr


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    run([sys.executable, osp.join(TOOLS, 'misc', 'make_demo_data.py'),
         str(root), '--num-train', '128', '--num-val', '64', '--seed', '1'])
    return root


def demo_options(root, work_dir, epochs=2, **extra):
    opts = {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'train_dataloader.batch_size': 32,
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'param_scheduler.T_max': epochs,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': 3,
        'default_hooks.logger.interval': 1,
    }
    opts.update(extra)
    return ['--work-dir', str(work_dir), '--cfg-options'
            ] + [f'{k}={v}' for k, v in opts.items()]


def final_metrics(log: str):
    found = re.findall(r'mAP@class: ([\d.]+).*?mAP@sample: ([\d.]+)', log)
    assert found, log[-3000:]
    return tuple(map(float, found[-1]))


def epoch_metrics(log: str, mode: str):
    """The last mAPs of mmengine's ``Epoch(val)`` / ``Epoch(test)`` lines,
    as printed (4 decimals)."""
    found = re.findall(rf'Epoch\({mode}\).*?mAP@class: ([\d.]+).*?'
                       r'mAP@sample: ([\d.]+)', log)
    assert found, log[-3000:]
    return found[-1]


def load_state(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_train_then_test_reports_both_maps(demo_root, tmp_path):
    log = run([sys.executable, osp.join(TOOLS, 'train.py'), DEMO_CFG] +
              demo_options(demo_root, tmp_path / 'w'))
    m_class, m_sample = final_metrics(log)
    assert 0 < m_class <= 100 and 0 < m_sample <= 100
    log = run([
        sys.executable, osp.join(TOOLS, 'test.py'), DEMO_CFG,
        str(tmp_path / 'w' / 'epoch_2.pth'), '--work-dir',
        str(tmp_path / 't'), '--cfg-options',
        f'test_dataloader.dataset.data_root={demo_root}'
    ])
    # the checkpoint evaluates to the same numbers as at the end of training
    assert final_metrics(log) == pytest.approx((m_class, m_sample), abs=0.01)


def test_resume_reproduces_an_uninterrupted_run(demo_root, tmp_path):
    full = tmp_path / 'full'
    run([sys.executable, osp.join(TOOLS, 'train.py'), DEMO_CFG] +
        demo_options(demo_root, full))
    resumed = tmp_path / 'resumed'
    log = run([sys.executable, osp.join(TOOLS, 'train.py'), DEMO_CFG,
               '--resume', str(full / 'epoch_1.pth')] +
              demo_options(demo_root, resumed))
    assert 'resumed epoch: 1' in log.lower() or 'Load checkpoint' in log
    a, b = load_state(full / 'epoch_2.pth'), load_state(resumed / 'epoch_2.pth')
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and the first epoch really changed the weights
    first = load_state(full / 'epoch_1.pth')
    assert not torch.equal(first['head.fc.weight'], a['head.fc.weight'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path')
def test_dist_train_with_two_cpu_processes(demo_root, tmp_path):
    log = run(['bash', osp.join(TOOLS, 'dist_train.sh'), DEMO_CFG, '2'] +
              demo_options(demo_root, tmp_path / 'w', epochs=1),
              env=dict(PORT='29517'))
    assert re.search(r'world_size: 2|Distributed launcher: pytorch', log)
    m_class, m_sample = final_metrics(log)
    assert 0 < m_class <= 100 and 0 < m_sample <= 100
    assert (tmp_path / 'w' / 'epoch_1.pth').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path')
def test_dist_train_prints_the_metric_of_its_checkpoint(demo_root, tmp_path):
    """Two gloo ranks validate with the BatchNorm statistics they save.

    Each rank sees other images, so without SyncBuffersHook (the default
    runtime's ``sync_buffers``) each validates with its own running
    statistics and the printed metric is not that of the checkpoint, which
    holds rank 0's.
    """
    log = run(['bash', osp.join(TOOLS, 'dist_train.sh'), DEMO_CFG, '2'] +
              demo_options(demo_root, tmp_path / 'w', epochs=2),
              env=dict(PORT='29519'))
    assert 'SyncBuffersHook' in log
    printed = epoch_metrics(log, 'val')
    log = run([
        sys.executable, osp.join(TOOLS, 'test.py'), DEMO_CFG,
        str(tmp_path / 'w' / 'epoch_2.pth'), '--work-dir',
        str(tmp_path / 't'), '--cfg-options',
        f'test_dataloader.dataset.data_root={demo_root}'
    ])
    # the same 4 printed decimals
    assert epoch_metrics(log, 'test') == printed


# ------------------------------------- mmpretrain's own config, loss swapped

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')


def write_voc(root, split, ids_and_objects):
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        os.makedirs(root / sub, exist_ok=True)
    rng = np.random.default_rng(0)
    for img_id, objects in ids_and_objects:
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
                        ).save(root / 'JPEGImages' / f'{img_id}.jpg')
        ann = ET.Element('annotation')
        ET.SubElement(ann, 'filename').text = f'{img_id}.jpg'
        for name, difficult in objects:
            obj = ET.SubElement(ann, 'object')
            ET.SubElement(obj, 'name').text = name
            ET.SubElement(obj, 'difficult').text = str(difficult)
            box = ET.SubElement(obj, 'bndbox')
            for k, v in zip(('xmin', 'ymin', 'xmax', 'ymax'), (1, 1, 20, 20)):
                ET.SubElement(box, k).text = str(v)
        ET.ElementTree(ann).write(root / 'Annotations' / f'{img_id}.xml')
    with open(root / 'ImageSets' / 'Main' / f'{split}.txt', 'a') as f:
        f.writelines(f'{img_id}\n' for img_id, _ in ids_and_objects)


def test_mmpretrain_shipped_csra_config_with_only_the_loss_swapped(tmp_path):
    import mmpretrain
    shipped = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'csra',
        'resnet101-csra_1xb16_voc07-448px.py')
    voc = tmp_path / 'VOC2007'
    write_voc(voc, 'trainval', [('000001', [('dog', 0), ('person', 0)]),
                                ('000002', [('cat', 0), ('chair', 1)])])
    write_voc(voc, 'test', [('000003', [('dog', 0), ('cat', 1)]),
                            ('000004', [('person', 0), ('cat', 0)])])
    cfg = Config.fromfile(shipped)
    # the two lines a user adds to plug mmtwoway in
    cfg.custom_imports = dict(imports=['mmtwoway'], allow_failed_imports=False)
    cfg.model.head.loss = dict(type='TwoWayLoss', tp=4.0, tn=1.0)
    # offline test setup: local data, no pretrained download, tiny run
    cfg.model.backbone.init_cfg = None
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(voc)
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.train_cfg.max_epochs = 1
    cfg.work_dir = str(tmp_path / 'w')
    cfg_path = tmp_path / 'csra_twoway.py'
    cfg.dump(str(cfg_path))
    log = run([sys.executable, osp.join(TOOLS, 'train.py'), str(cfg_path)])
    assert 'TwoWayLoss' in log
    mAP = re.findall(r'multi-label/mAP: ([\d.]+)', log)
    assert mAP and 0 <= float(mAP[-1]) <= 100, log[-2000:]


# ------------------------------------ the README's plugin snippet, literally


def readme_plugin_snippet() -> str:
    """The python block of the README section on using the plugin."""
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    section = readme.split('## Using the plugin from any MMPretrain config',
                           1)[1]
    return section.split('```python\n', 1)[1].split('```', 1)[0]


def test_readme_plugin_snippet_on_a_shipped_single_label_config(
        demo_root, tmp_path):
    snippet = readme_plugin_snippet()
    assert "_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']" in \
        snippet
    config = tmp_path / 'plugin.py'
    config.write_text(snippet)
    # only where the data is and how long to train: not part of the snippet
    opts = [f'{loader}.{key}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')
            for key in (f'dataset.data_root={demo_root}', 'num_workers=0',
                        'batch_size=32')]
    log = run([sys.executable, osp.join(TOOLS, 'train.py'), str(config),
               '--work-dir', str(tmp_path / 'w'), '--cfg-options',
               'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'] +
              opts)
    assert 'TwoWayLinearClsHead' in log and 'CocoMultiLabel' in log
    assert re.search(r'Epoch\(train\) \[1\]\[4/4\]', log), log[-3000:]
    m_class, m_sample = final_metrics(log)
    assert 0 < m_class <= 100 and 0 < m_sample <= 100
