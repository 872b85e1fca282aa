"""tools/benchmark/bench_pipeline.py on a tiny set (--smoke): every row
runs and the report is complete. No timing is asserted."""
import pytest
import json
import os
import os.path as osp
import subprocess
import sys

# A benchmark run: `make test-fast` skips it.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'benchmark', 'bench_pipeline.py')


def test_bench_pipeline_smoke(tmp_path):
    out_json, out_md = tmp_path / 'bench.json', tmp_path / 'bench.md'
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    res = subprocess.run(
        [sys.executable, SCRIPT, '--smoke', '--work-dir',
         str(tmp_path / 'data'), '--json', str(out_json), '--md',
         str(out_md)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads(out_json.read_text())
    assert report['smoke'] is True and report['images'] == 8
    names = [row['name'] for row in report['rows']]
    for want in ('decode only: cv2', 'decode only: Pillow',
                 'decode only: Pillow at 1/2 size',
                 'decode only: torchvision.io',
                 'mmtwoway COCO train (workers; jitter on the device)',
                 'mmtwoway previous cv2 pipeline',
                 'mmpretrain ImageNet pipeline (cv2, crop, flip)',
                 'authors (torchvision)'):
        assert want in names, names
    assert any(n.startswith('DataLoader, 2 workers') for n in names)
    for row in report['rows']:
        assert row['per_core'] > 0
    authors = next(r for r in report['rows']
                   if r['name'] == 'authors (torchvision)')
    assert authors['vs_authors'] == 1.0
    assert report['loader_images_per_s'] > 0
    # The COCO-layout photos were written and read by CocoMultiLabel.
    assert len(os.listdir(tmp_path / 'data' / 'train2014')) == 8
    md = out_md.read_text()
    assert 'SMOKE RUN' in md and '| authors (torchvision) |' in md
    assert md.count('\n|') == len(names) + 2
