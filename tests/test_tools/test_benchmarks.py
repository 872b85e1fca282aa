"""tools/benchmark/loss_benchmark.py (--quick); gpu_check: test_gpu_check.py.

It runs for real: the mmengine Runner trains, the report and plot are
written and read back. The loss benchmark's machinery is imported from
``tools.benchmark.loss_bench``; its command line runs in a
subprocess, as a user runs it. It needs Fashion-MNIST and skips without it
(``make bench-data`` installs it).
"""
import filecmp
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

from tools.benchmark.loss_bench import (configs, data, report, settings,
                                        training)

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'tools', 'benchmark')
HAVE_FASHION = osp.isfile(
    osp.join(data.FASHION_MNIST_ROOT, 'train-images-idx3-ubyte.gz'))
needs_fashion = pytest.mark.skipif(
    not HAVE_FASHION,
    reason=f'Fashion-MNIST is not installed in {data.FASHION_MNIST_ROOT} '
    '(apt-get install -y dataset-fashion-mnist, or make bench-data)')


def run_tool(script, *argv, check=True):
    """Run a tool of this checkout in a subprocess; return the result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools', script),
                          *map(str, argv)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1200)
    if check:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def cached_runs(work_dir):
    """results.json as kind -> name -> runs in seed order."""
    with open(osp.join(work_dir, 'results.json')) as f:
        cache = json.load(f)
    runs = {'pretrain': {}, 'finetune': {}}
    for key, result in cache.items():
        kind, name, seed, _ = key.split('|')
        assert (name, seed) == (result['loss'], f'seed{result["seed"]}')
        runs[kind].setdefault(name, []).append(result)
    for group in runs.values():
        for rs in group.values():
            rs.sort(key=lambda r: r['seed'])
    return runs


@needs_fashion
def test_quick_benchmark_report_plot_and_cache(tmp_path):
    doc = tmp_path / 'docs' / 'bench.md'
    doc.parent.mkdir()
    doc.write_text('# Mine\n\nkept before\n\n' + report.BEGIN + '\nold\n' +
                   report.END + '\n\n## GPU\n\nkept after\n')
    work_dir = tmp_path / 'wd'
    argv = ['--quick', '--losses', 'two-way', 'BCE, frequency-weighted',
            '--threads', '1', '--work-dir', work_dir, '--out', doc]
    first = run_tool(osp.join('benchmark', 'loss_benchmark.py'), *argv)
    res = cached_runs(work_dir)

    # the weighted BCE runs with the class weights that mmtwoway's
    # ClassFrequencyHook counts on the train mosaics (it fails otherwise)
    assert sorted(res['finetune']) == ['BCE, frequency-weighted', 'two-way']
    assert sorted(res['pretrain']) == ['ASL', 'softmax', 'two-way']
    assert '[skip]' not in first.stdout
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
    # the mosaics are those of tools/misc/make_mosaic_data.py
    with open(work_dir / 'mosaics' / 'command.json') as f:
        stamp = json.load(f)
    assert stamp['args'] == settings.mosaic_command(
        settings.SETTINGS['quick'], str(work_dir / 'mosaics'),
        data.FASHION_MNIST_ROOT)
    assert stamp['summary']['train']['images'] == 64

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
    before = sorted(os.listdir(work_dir / 'finetune'))
    again = run_tool(osp.join('benchmark', 'loss_benchmark.py'), *argv)
    assert '[finetune]' in first.stdout and '[pretrain]' in first.stdout
    assert '[finetune]' not in again.stdout
    assert '[pretrain]' not in again.stdout
    assert cached_runs(work_dir) == res
    assert sorted(os.listdir(work_dir / 'finetune')) == before
    assert doc.read_text().count(report.BEGIN) == 1


@needs_fashion
def test_mosaics_match_make_mosaic_data_and_are_made_once(tmp_path):
    setting = settings.resolve_setting('quick', num_train=6, num_val=4)
    summary = training.make_mosaics(setting, str(tmp_path / 'wd'),
                                    data.FASHION_MNIST_ROOT)
    out = tmp_path / 'wd' / 'mosaics'
    args = settings.mosaic_command(setting, str(tmp_path / 'tool'),
                                   data.FASHION_MNIST_ROOT)
    run_tool(osp.join('misc', 'make_mosaic_data.py'), *args)
    for sub in ('annotations', 'train', 'val'):
        names = sorted(os.listdir(tmp_path / 'tool' / sub))
        assert names == sorted(os.listdir(out / sub)) and names
        _, mismatch, errors = filecmp.cmpfiles(
            tmp_path / 'tool' / sub, out / sub, names, shallow=False)
        assert not mismatch and not errors
    assert (summary['train']['images'], summary['val']['images']) == (6, 4)
    assert summary['source'] == 'fashion-mnist'
    assert summary['classes'] == list(data.FASHION_MNIST_CLASSES)

    # made once: the stamp's summary comes back and nothing is rewritten
    ann = out / 'annotations' / 'instances_train.json'
    ann.write_text('{"kept": true}')
    assert training.make_mosaics(setting, str(tmp_path / 'wd'),
                                 data.FASHION_MNIST_ROOT) == summary
    assert ann.read_text() == '{"kept": true}'


def test_unknown_or_broken_loss_is_reported_not_run():
    assert settings.unavailable(dict(type='TwoWayLoss')) is None
    why = settings.unavailable(dict(type='NoSuchLoss'))
    assert why and 'NoSuchLoss' in why
    setting = settings.SETTINGS['default']
    losses = settings.finetune_losses(setting)
    assert len(losses) == 8
    assert losses['two-way']['bucket_size'] == setting.bucket
    # Both ASL variants: the official gradient (the configs') and
    # mmpretrain's, with the focusing weight in the graph.
    assert losses['ASL']['type'] == 'OfficialAsymmetricLoss'
    assert losses['ASL']['detach_focusing_weight'] is True
    assert losses['ASL, weight in the graph (mmpretrain)']['loss'][
        'type'] == 'AsymmetricLoss'
    for loss in losses.values():  # every loss of the protocol is built here
        assert settings.unavailable(loss) is None
    kept = settings.select_losses(losses, ['BCE', 'two-way'])
    assert list(kept) == ['two-way', 'BCE']  # table order
    assert settings.select_losses(losses, None) == losses
    with pytest.raises(ValueError, match="unknown \\['nonsense'\\]"):
        settings.select_losses(losses, ['two-way', 'nonsense'])


def test_overrides_keep_the_setting():
    setting = settings.resolve_setting('default', lr=0.1, epochs=3, seeds=4,
                                       batch=None)
    assert (setting.name, setting.lr, setting.epochs, setting.seeds) == (
        'default', 0.1, 3, 4)
    assert setting.batch == settings.SETTINGS['default'].batch
    assert settings.SETTINGS['default'].lr != 0.1  # the table is untouched
    with pytest.raises(ValueError, match='no field'):
        settings.resolve_setting('gpu', learning_rate=0.1)
    with pytest.raises(ValueError, match='unknown setting'):
        settings.resolve_setting('huge')


def test_command_line_rejects_bad_options_before_building_data(tmp_path):
    tool = osp.join('benchmark', 'loss_benchmark.py')
    res = run_tool(tool, '--lr', '0', check=False)
    assert res.returncode == 2 and '--lr must be > 0' in res.stderr
    # an unknown loss fails at once, before the (missing) data is read
    res = run_tool(tool, '--quick', '--losses', 'nonsense', '--data-root',
                   tmp_path / 'none', '--work-dir', tmp_path / 'wd',
                   check=False)
    assert res.returncode == 1
    assert "--losses: unknown ['nonsense']; choose from" in res.stderr
    assert not (tmp_path / 'wd').exists()


def test_mean_std_and_write_doc_without_markers(tmp_path):
    assert report.mean_std([1.0, 2.0, 3.0]) == '2.00 ± 1.00'
    assert report.mean_std([4.0]) == '4.00 ± nan'
    doc = tmp_path / 'x.md'
    doc.write_text('# Existing\n')
    report.write_doc(str(doc), report.BEGIN + '\nnew\n' + report.END)
    assert doc.read_text() == '# Existing\n\n' + report.BEGIN + '\nnew\n' + \
        report.END + '\n'
    fresh = tmp_path / 'sub' / 'new.md'
    report.write_doc(str(fresh), report.BEGIN + '\nnew\n' + report.END)
    assert fresh.read_text() == report.DOC_HEADER + report.BEGIN + \
        '\nnew\n' + report.END + '\n'


@pytest.mark.parametrize('name', ['quick', 'default', 'gpu'])
def test_every_setting_builds_a_model_of_matching_width(name):
    """feat_channels must match the backbone, or the head's fc breaks."""
    from mmpretrain.registry import MODELS
    setting = settings.SETTINGS[name]
    head = dict(type='TwoWayLinearClsHead', num_classes=data.NUM_CLASSES,
                in_channels=setting.feat_channels,
                loss=dict(type='TwoWayLoss', bucket_size=2))
    model = MODELS.build(configs.model_config(setting, head)).eval()
    canvas = torch.randint(0, 256, (2, 3, setting.canvas, setting.canvas))
    inputs = model.data_preprocessor(dict(inputs=canvas), False)['inputs']
    with torch.no_grad():
        assert model(inputs).shape == (2, data.NUM_CLASSES)
    item = np.zeros((2, 28, 28), np.uint8)
    assert training.features(model, item).shape == (2, setting.feat_channels)
    assert setting.batch % setting.bucket == 0
    assert setting.item_size[1] <= setting.canvas
