"""tools/analysis/plot_ap.py on the results of a real (tiny) training run:
the pickle a test run dumps and the calibration file."""
import pickle

import numpy as np
import pytest
from demo_run import CLASSES, calibration, demo_run, load_tool, run_main
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

from mmtwoway.evaluation.decision import load_calibration, save_calibration
from mmtwoway.utils.runtime import adapt_to_machine

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.fixture(scope='module')
def dumped(run, tmp_path_factory):
    """What ``tools/test.py CONFIG CKPT --out FILE.pkl`` writes: the test
    loop of a real Runner with mmengine's DumpResults."""
    folder = tmp_path_factory.mktemp('dump')
    cfg = Config.fromfile(run.config)
    cfg.load_from = run.checkpoint
    cfg.work_dir = str(folder)
    cfg.experiment_name = 'plot_ap_dump'
    path = str(folder / 'results.pkl')
    cfg.test_evaluator = [
        dict(type='MultiLabelMAP'),
        dict(type='DumpResults', out_file_path=path)
    ]
    adapt_to_machine(cfg)
    metrics = Runner.from_cfg(cfg).test()
    return path, metrics['multi-label/mAP@class']


def test_ap_of_a_test_dump_and_of_a_calibration_file(run, dumped, tmp_path):
    tool = load_tool('analysis/plot_ap')
    pkl, map_class = dumped
    cal_file, _ = calibration(run)
    from_pkl = tool.load_result(pkl)
    from_json = tool.load_result(cal_file)
    # two independent passes over the same val set agree
    np.testing.assert_allclose(from_pkl['ap'], from_json['ap'], atol=1e-3)
    np.testing.assert_array_equal(from_pkl['num_positives'],
                                  from_json['num_positives'])
    assert np.nanmean(from_pkl['ap']) == pytest.approx(map_class, abs=1e-3)
    assert from_json['classes'] == list(CLASSES)
    out = tmp_path / 'ap.png'
    printed = run_main('analysis/plot_ap', [
        pkl, cal_file, '--labels', 'test-dump', 'calibration', '--classes',
        cal_file, '--out', out
    ])
    assert f'test-dump: mAP@class {map_class:.2f}' in printed
    with Image.open(out) as png:
        assert png.format == 'PNG'
        assert png.size[0] >= 700 and png.size[1] >= 400
        pixels = np.asarray(png.convert('RGB')).astype(int)
    # two bar colours (matplotlib's first two) are drawn
    for color in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels - color).max(-1) < 10).sum() > 500


def test_results_file_checks(run, dumped, tmp_path):
    tool = load_tool('analysis/plot_ap')
    pkl, _ = dumped
    small = str(tmp_path / 'small.json')
    save_calibration(small, CLASSES[:4], [0.] * 4, 0.1,
                     validation=dict(per_class=dict(
                         ap=[50., None, 20., 10.],
                         num_positives=[3, 0, 1, 2])))
    assert np.isnan(tool.load_result(small)['ap'][1])
    with pytest.raises(ValueError, match='has 4 classes but .* has 10'):
        run_main('analysis/plot_ap', [pkl, small, '--out', tmp_path / 'x.png'])
    bare = str(tmp_path / 'bare.json')
    save_calibration(bare, CLASSES, [0.] * 10, 0.1)
    with pytest.raises(ValueError, match='no per-class AP'):
        tool.load_result(bare)
    with pytest.raises(ValueError, match='expected a .pkl'):
        (tmp_path / 'r.txt').write_text('x')
        tool.load_result(str(tmp_path / 'r.txt'))
    not_results = tmp_path / 'other.pkl'
    not_results.write_bytes(pickle.dumps({'a': 1}))
    with pytest.raises(ValueError, match='not a tools/test.py --out file'):
        tool.load_result(str(not_results))
    names = tmp_path / 'names.txt'
    names.write_text('\n'.join(load_calibration(small)['classes']))
    with pytest.raises(ValueError, match='4 class names for 10 classes'):
        run_main('analysis/plot_ap',
                 [pkl, '--classes', names, '--out', tmp_path / 'x.png'])
