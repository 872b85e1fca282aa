"""tools/benchmark/loss_benchmark.py (--quick) and gpu_check.sh (--smoke).

Both run for real: the mmengine Runner trains, the report and plot are
written and read back. The loss benchmark needs Fashion-MNIST and skips
without it (``make bench-data`` installs it); the GPU check's CPU path runs
anywhere.
"""
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mmtwoway.datasets.idx import FASHION_MNIST_ROOT

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'tools', 'benchmark')
HAVE_FASHION = osp.isfile(
    osp.join(FASHION_MNIST_ROOT, 'train-images-idx3-ubyte.gz'))


def load(name):
    spec = importlib.util.spec_from_file_location(
        f'{name}_under_test', osp.join(BENCH, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def lb():
    return load('loss_benchmark')


@pytest.mark.skipif(
    not HAVE_FASHION,
    reason=f'Fashion-MNIST is not installed in {FASHION_MNIST_ROOT} '
    '(apt-get install -y dataset-fashion-mnist, or make bench-data)')
def test_quick_benchmark_report_plot_and_cache(lb, tmp_path, one_thread):
    doc = tmp_path / 'docs' / 'bench.md'
    doc.parent.mkdir()
    doc.write_text('# Mine\n\nkept before\n\n' + lb.BEGIN + '\nold\n' +
                   lb.END + '\n\n## GPU\n\nkept after\n')
    argv = ['--quick', '--losses', 'two-way', 'BCE, frequency-weighted',
            '--threads', '1',
            '--work-dir', str(tmp_path / 'wd'), '--out', str(doc)]
    res = lb.main(argv)

    # the weighted BCE runs with the class weights that mmtwoway's
    # ClassFrequencyHook counts on the train mosaics (it fails otherwise)
    assert sorted(res['finetune']) == ['BCE, frequency-weighted', 'two-way']
    assert sorted(res['pretrain']) == ['ASL', 'softmax', 'two-way']
    assert not res['missing']
    for runs in list(res['finetune'].values()) + list(
            res['pretrain'].values()):
        assert [r['seed'] for r in runs] == [0, 1]
    for runs in res['finetune'].values():
        for r in runs:
            assert [c['epoch'] for c in r['curve']] == [1, 2]
            for c in r['curve']:
                assert 0 < c['map_class'] <= 100
                assert 0 < c['map_sample'] <= 100
            assert r['map_class'] == r['curve'][-1]['map_class']
    for runs in res['pretrain'].values():
        for r in runs:
            assert 0 <= r['fashion_top1'] <= 100
            # a linear probe on any features beats chance (10%) on digits
            assert r['digits_probe'] > 20
            assert osp.isfile(r['checkpoint'])

    text = doc.read_text()
    assert text.startswith('# Mine\n\nkept before\n\n')
    assert text.endswith('## GPU\n\nkept after\n')
    assert '\nold\n' not in text
    for name in ('two-way', 'BCE, frequency-weighted'):
        runs = res['finetune'][name]
        cls = np.array([r['map_class'] for r in runs])
        row = (f'| {name} | {cls.mean():.2f} ± {cls.std(ddof=1):.2f} |')
        assert row in text
    assert "--quick --losses two-way 'BCE, frequency-weighted'" in text
    assert re.search(r'\| softmax \| [\d.]+ ± [\d.]+ \|', text)
    with Image.open(doc.parent / 'bench_curves.png') as im:
        assert im.format == 'PNG' and im.size[0] > 600

    # a second call trains nothing: every result comes from the cache
    before = sorted(os.listdir(tmp_path / 'wd' / 'finetune'))
    again = lb.main(argv)
    assert again['finetune'] == res['finetune']
    assert again['pretrain'] == res['pretrain']
    assert sorted(os.listdir(tmp_path / 'wd' / 'finetune')) == before


def test_unknown_or_broken_loss_is_reported_not_run(lb):
    assert lb.unavailable(dict(type='TwoWayLoss')) is None
    why = lb.unavailable(dict(type='NoSuchLoss'))
    assert why and 'NoSuchLoss' in why
    setting = lb.SETTINGS['default']
    losses = lb.finetune_losses(setting)
    assert len(losses) == 7
    assert losses['two-way']['bucket_size'] == setting.bucket
    for loss in losses.values():  # every loss of the protocol is built here
        assert lb.unavailable(loss) is None


def test_overrides_keep_the_setting_and_its_work_dir(lb):
    setting, work_dir = lb.resolve(lb.parse_args(['--lr', '0.1', '--epochs',
                                                  '3', '--seeds', '4']))
    assert work_dir.endswith(osp.join('work_dirs', 'loss_benchmark_default'))
    assert (setting.name, setting.lr, setting.epochs, setting.seeds) == (
        'default', 0.1, 3, 4)
    assert lb.SETTINGS['default'].lr != 0.1  # the table itself is untouched
    setting, work_dir = lb.resolve(lb.parse_args(['--gpu', '--work-dir',
                                                  'x']))
    assert (setting.name, work_dir) == ('gpu', 'x')
    with pytest.raises(SystemExit):
        lb.parse_args(['--lr', '0'])


def test_mean_std_and_write_doc_without_markers(lb, tmp_path):
    assert lb.mean_std([1.0, 2.0, 3.0]) == '2.00 ± 1.00'
    assert lb.mean_std([4.0]) == '4.00 ± nan'
    doc = tmp_path / 'x.md'
    doc.write_text('# Existing\n')
    lb.write_doc(str(doc), lb.BEGIN + '\nnew\n' + lb.END)
    assert doc.read_text() == '# Existing\n\n' + lb.BEGIN + '\nnew\n' + \
        lb.END + '\n'
    with pytest.raises(SystemExit):
        lb.main(['--quick', '--losses', 'nonsense'])


def test_gpu_check_script_cpu_smoke(tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable)
    res = subprocess.run(
        ['bash', osp.join(BENCH, 'gpu_check.sh'), '--smoke', '--threads',
         '1'], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads((out / 'gpu_check.json').read_text())
    assert report['smoke'] is True
    table = report['loss_ms']['fp32']
    assert set(table) == {'BCE-with-logits', 'ASL (mmpretrain)',
                          'two-way (bool-mask)', 'two-way (mmtwoway)'}
    for row in table.values():
        assert list(row) == report['shapes'] and min(row.values()) > 0
    assert set(report['resnet50_step']) == {'BCE', 'two-way (bool-mask)',
                                            'two-way (mmtwoway)'}
    assert report['resnet50_step']['BCE']['overhead_pct'] == 0
    for name in ('runner', 'runner_gpu_decode', 'plain_loop',
                 'authors_loop', 'dataloader_only', 'step_only'):
        assert report['throughput'][name]['images_per_s'] > 0
    for name in ('runner', 'runner_gpu_decode', 'authors_loop'):
        assert report['throughput'][name]['iterations'] == 4, name
    # training validated on the synthetic val2014 split, and the VOC split
    # with difficult objects was evaluated
    assert set(report['throughput']['runner']['val_metrics']) >= {
        'multi-label/mAP@class', 'multi-label/mAP@sample', 'multi-label/OF1'}
    assert 0 <= report['voc_val']['multi-label/mAP@class'] <= 100
    # the GPU-decoding config validated too (its decode on the CPU here)
    assert set(report['throughput']['runner_gpu_decode']['val_metrics']) >= {
        'multi-label/mAP@class', 'multi-label/mAP@sample'}
    assert report['sections'] == ['loss', 'resnet50_step', 'runner',
                                  'runner_gpu_decode', 'voc_val', 'plain',
                                  'authors_loop']
    md = (out / 'gpu_check.md').read_text()
    assert 'SMOKE RUN' in md and '| Runner, CPU decoding (the config) |' in md
    assert '| Runner, GPU decoding |' in md and 'vs step only' in md
    assert (out / 'gpu_check.log').read_text().count('runner / plain') == 1


def test_gpu_check_names_the_missing_imports(tmp_path):
    # A machine without the OpenMMLab stack and no wheels: the script says
    # which modules are missing and which package provides each.
    out = tmp_path / 'out'
    fake_python = tmp_path / 'python'
    # An interpreter on which mmpretrain cannot be imported.
    fake_python.write_text('#!/bin/sh\nexec ' + sys.executable +
                           ' -c "import sys; sys.modules[\'mmpretrain\'] ='
                           ' None; exec(compile(sys.stdin.read(), \'-\','
                           ' \'exec\'))" "$@"\n')
    fake_python.chmod(0o755)
    env = dict(os.environ, OUT=str(out), PYTHON=str(fake_python),
               WHEELS=str(tmp_path / 'none'))
    res = subprocess.run(['bash', osp.join(BENCH, 'gpu_check.sh'),
                          '--smoke'], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert 'mmpretrain (pip package mmpretrain)' in res.stderr
    assert 'torch (pip package' not in res.stderr


@pytest.mark.parametrize('name', ['quick', 'default', 'gpu'])
def test_every_setting_builds_a_model_of_matching_width(lb, name):
    """feat_channels must match the backbone, or the head's fc breaks."""
    from mmpretrain.registry import MODELS
    setting = lb.SETTINGS[name]
    head = dict(type='TwoWayLinearClsHead', num_classes=lb.NUM_CLASSES,
                in_channels=setting.feat_channels,
                loss=dict(type='TwoWayLoss', bucket_size=2))
    model = MODELS.build(lb._model(setting, head)).eval()
    canvas = torch.randint(0, 256, (2, 3, setting.canvas, setting.canvas))
    data = model.data_preprocessor(dict(inputs=canvas), False)
    with torch.no_grad():
        assert model(data['inputs']).shape == (2, lb.NUM_CLASSES)
    item = np.zeros((2, 28, 28), np.uint8)
    assert lb.features(model, item).shape == (2, setting.feat_channels)
    assert setting.batch % setting.bucket == 0
    assert setting.item_size[1] <= setting.canvas
