"""tools/benchmark/gpu_check.sh on the CPU (--smoke): every section runs
for real at tiny sizes; a failing section is recorded with its traceback
and the sections after it still run."""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'tools', 'benchmark')
sys.path.insert(0, BENCH)  # the benchmark modules import their siblings
import gpu_check  # noqa: E402
import gpu_check_sections as sec  # noqa: E402
from gpu_check_report import to_markdown  # noqa: E402

ALL = [title for title, _ in gpu_check.SECTIONS]


def run_script(tmp_path, *argv, python=sys.executable, timeout=900):
    out = tmp_path / 'out'
    env = dict(os.environ, OUT=str(out), PYTHON=python)
    res = subprocess.run(['bash', osp.join(BENCH, 'gpu_check.sh'), *argv],
                         cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
    return res, out


@pytest.mark.slow
def test_gpu_check_script_cpu_smoke(tmp_path):
    res, out = run_script(tmp_path, '--smoke', '--threads', '1')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads((out / 'gpu_check.json').read_text())
    assert report['smoke'] is True
    # every section ran, in order; here only the nvJPEG one cannot
    status = {r['title']: r['status'] for r in report['sections']}
    assert list(status) == ALL
    for title, value in status.items():
        expected = 'ok'
        if title == 'nvjpeg' and not osp.isfile(
                osp.join(BENCH, 'gpu_nvjpeg.py')):
            expected = 'not available'
        assert value == expected, (title, report['sections'])
    table = report['loss_ms']['fp32']
    assert set(table) == {'BCE-with-logits', 'ASL (mmpretrain)',
                          'two-way (bool-mask)', 'two-way (mmtwoway)'}
    for row in table.values():
        assert list(row) == report['shapes'] and min(row.values()) > 0
    assert report['resnet50_step']['BCE']['overhead_pct'] == 0
    thr = report['throughput']
    for name in ('runner', 'runner_bf16', 'runner_gpu_decode', 'plain_loop',
                 'authors_loop', 'dataloader_only', 'step_only'):
        assert thr[name]['images_per_s'] > 0, name
    for name in ('runner', 'runner_gpu_decode', 'authors_loop'):
        assert thr[name]['iterations'] == 4, name
    assert set(thr['runner']['val_metrics']) >= {
        'multi-label/mAP@class', 'multi-label/mAP@sample', 'multi-label/OF1'}
    assert 0 <= report['voc_val']['multi-label/mAP@class'] <= 100
    # the sync-debug runs made their steps (counted on CUDA only)
    for precision in ('fp16', 'bf16'):
        row = report['sync_debug'][precision]
        assert row['steps'] == 4
        assert row['warnings'] is None if not torch.cuda.is_available() \
            else row['warnings'] >= 0
    # torchrun, one process (gloo on a CPU machine)
    assert report['dist_train']['returncode'] == 0
    md = (out / 'gpu_check.md').read_text()
    assert 'SMOKE RUN' in md and '| runner | ok |' in md
    assert '| Runner, CPU decoding (the config, fp16) |' in md
    assert '| Runner, --bf16 |' in md and 'vs step only' in md
    assert '| fp16 | OptimWrapper | 4 |' in md  # no AMP without CUDA
    assert '`tools/dist_train.sh CONFIG 1` (gloo): exit 0' in md
    assert '12 sections in' in (out / 'gpu_check.log').read_text()


def test_a_failing_section_is_recorded_and_the_next_runs(tmp_path):
    """A deliberately failing section, then the real loss section."""
    def boom(ctx):
        raise ValueError('deliberate failure in the test section')

    report = dict(device='CPU', torch=torch.__version__, smoke=True,
                  shapes=['16x8', '16x62', '64x8'], batch=4, workers=0,
                  step_batch=2, warmup=1, sections=[])
    args = argparse.Namespace(smoke=True)
    ctx = sec.Context(args, torch.device('cpu'), gpu_check.SMOKE,
                      str(tmp_path), report)
    saved = []
    gpu_check.run_sections([('boom', boom), ('loss', sec.loss)], ctx,
                           lambda: saved.append(to_markdown(report)))
    first, second = report['sections']
    assert first['status'] == 'failed'
    assert first['note'] == ('ValueError: deliberate failure in the test '
                             'section')
    assert 'in boom' in first['traceback']
    assert first['traceback'].rstrip().endswith(
        'ValueError: deliberate failure in the test section')
    assert second['status'] == 'ok' and report['loss_ms']['fp32']
    # written after each section; the summary lists both, the traceback
    # follows, then the loss table
    assert len(saved) == 2
    md = saved[-1]
    assert '| boom | failed |' in md and '| loss | ok |' in md
    assert 'Section `boom` failed:' in md and 'in boom' in md
    assert md.index('Section `boom` failed') < md.index('| loss, fwd+bwd ms')
    assert '| two-way (mmtwoway) | fp32 |' in md


def test_sections_after_the_budget_are_listed_as_skipped(tmp_path):
    report = dict(device='CPU', torch=torch.__version__, smoke=True,
                  sections=[])
    ctx = sec.Context(argparse.Namespace(smoke=True), torch.device('cpu'),
                      gpu_check.SMOKE, str(tmp_path), report)
    ran = []
    gpu_check.run_sections([('a', lambda c: ran.append('a'))], ctx,
                           lambda: None, budget=-1.)
    assert ran == [] and report['sections'][0]['status'] == 'skipped'
    assert 'time budget' in report['sections'][0]['note']


@pytest.mark.slow
def test_runner_sections_without_data_fail_one_by_one(tmp_path):
    # No `data` section: each Runner section fails on the missing
    # annotations, is written with its traceback, and the next one runs.
    res, out = run_script(tmp_path, '--smoke', '--threads', '1', '--only',
                          'runner,voc_val')
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    report = json.loads((out / 'gpu_check.json').read_text())
    assert [(r['title'], r['status']) for r in report['sections']] == [
        ('runner', 'failed'), ('voc_val', 'failed')]
    for record in report['sections']:
        assert 'Traceback' in record['traceback']
    md = (out / 'gpu_check.md').read_text()
    assert 'Section `runner` failed' in md and 'Section `voc_val` failed' in md


@pytest.mark.slow
def test_unknown_section_is_named(tmp_path):
    res = subprocess.run(
        [sys.executable, osp.join(BENCH, 'gpu_check.py'), '--only',
         'loss,nonsense'], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 2
    assert "--only: unknown section(s) ['nonsense']; choose from loss," in \
        res.stderr


@pytest.mark.slow
def test_gpu_check_names_the_missing_imports(tmp_path):
    # A machine without the OpenMMLab stack and no wheels: the script says
    # which modules are missing and which package provides each.
    fake_python = tmp_path / 'python'
    # An interpreter on which mmpretrain cannot be imported.
    fake_python.write_text('#!/bin/sh\nexec ' + sys.executable +
                           ' -c "import sys; sys.modules[\'mmpretrain\'] ='
                           ' None; exec(compile(sys.stdin.read(), \'-\','
                           ' \'exec\'))" "$@"\n')
    fake_python.chmod(0o755)
    env = dict(os.environ, OUT=str(tmp_path / 'out'),
               PYTHON=str(fake_python), WHEELS=str(tmp_path / 'none'))
    res = subprocess.run(['bash', osp.join(BENCH, 'gpu_check.sh'),
                          '--smoke'], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert 'mmpretrain (pip package mmpretrain)' in res.stderr
    assert 'torch (pip package' not in res.stderr


def test_python3_is_used_where_there_is_no_python(tmp_path):
    # PATH with a python3 (this interpreter) and no python: the script
    # runs its import check with python3 (here it stops at the imports of
    # an interpreter without the stack, which shows which one ran).
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    python3 = bin_dir / 'python3'
    python3.write_text('#!/bin/sh\necho "python3 was run" >&2\nexit 1\n')
    python3.chmod(0o755)
    for tool in ('bash', 'dirname', 'mkdir', 'cat', 'ls', 'env'):
        path = subprocess.run(['sh', '-c', f'command -v {tool}'],
                              capture_output=True, text=True).stdout.strip()
        if path:
            (bin_dir / tool).symlink_to(path)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env.update(PATH=str(bin_dir), OUT=str(tmp_path / 'out'),
               WHEELS=str(tmp_path / 'none'))
    res = subprocess.run([str(bin_dir / 'bash'),
                          osp.join(BENCH, 'gpu_check.sh'), '--smoke'],
                         cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert 'python3 was run' in (tmp_path / 'out' / 'imports.txt').read_text()


def test_sync_window_counts_every_sync_warning_of_a_step():
    """What the sync_debug section counts on a GPU: CUDA's sync warnings
    raised inside a step, repeats included, under a library's 'ignore'."""
    from types import SimpleNamespace
    window = sec._SyncWindow(steps=2, cuda=False)
    runner = SimpleNamespace(iter=0, cfg=Config(dict(default_hooks=dict(
        logger=dict(interval=2)))))
    other = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        warnings.showwarning = lambda *a, **k: other.append(a[0])
        for it in range(3):
            runner.iter = it
            window.start(runner)
            for _ in range(it + 1):  # the same line, warned it + 1 times
                warnings.warn('called a synchronizing CUDA operation')
            warnings.warn('something else')
            window.stop(runner)
    assert window.per_step == [1, 2]  # the third step is past `steps`
    assert window.log_steps == [False, True]  # logger interval 2
    assert all('test_gpu_check.py' in w for w in window.where)
    # other warnings go to the handler in place; after `steps` steps the
    # window is closed and all do (its 'always' filter stays until the
    # caller's catch_warnings restores the filters, as sync_steps does)
    sync = 'called a synchronizing CUDA operation'
    assert [str(m) for m in other] == ['something else'] * 2 + [sync] * 3 \
        + ['something else']
