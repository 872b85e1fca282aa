"""tools/benchmark/gpu_nvjpeg.py from its command line: a markdown table on
a CUDA machine, one line saying it was skipped elsewhere."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'benchmark', 'gpu_nvjpeg.py')


@pytest.mark.slow
def test_smoke_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, TOOL, '--smoke', '--out-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    if torch.cuda.is_available():
        assert '| mmtwoway decode_batch (stream drained) | empty |' in \
            proc.stdout
        drained = [line for line in proc.stdout.splitlines()
                   if line.startswith('| mmtwoway')]
        assert len(drained) == 2
        assert all(line.split('|')[4].strip().startswith('0 /')
                   for line in drained), proc.stdout
    else:
        assert 'skipped (no CUDA device' in proc.stdout
        assert proc.stdout.count('\n') <= 2
