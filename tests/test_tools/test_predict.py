"""tools/predict.py and mmpretrain's ImageClassificationInferencer on a
model from a real (tiny) training run, with its calibration file."""
import csv
import json
import os.path as osp
import re
import sys

import pytest
import torch
from demo_run import (CLASSES, calibration, demo_run, load_tool, onnx_model,
                      run_main)
from mmengine.config import Config

from mmtwoway.evaluation.decision import (load_calibration, save_calibration,
                                          threshold_labels)

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.fixture(scope='module')
def cal_file(run):
    return calibration(run)[0]


def test_predict_a_folder_to_json_and_csv(run, cal_file, tmp_path):
    out = tmp_path / 'pred.json'
    printed = run_main('predict', [
        run.config, run.checkpoint,
        osp.join(run.root, 'val'), '--thresholds', cal_file, '--out', out
    ])
    assert f'Labels: per-class thresholds from {cal_file}' in printed
    assert 'No calibration file' not in printed
    with open(out) as f:
        written = json.load(f)
    preds = written['predictions']
    assert [p['image'] for p in preds] == run.val_images()
    assert written['classes'] == list(CLASSES)
    # the labels are exactly the calibrated thresholds on the scores
    scores = torch.tensor([p['scores'] for p in preds])
    thr = [t if t is not None else float('inf')
           for t in load_calibration(cal_file)['thresholds']]
    decided = threshold_labels(scores, thr)
    for pred, mask in zip(preds, decided):
        assert sorted(pred['label_indices']) == torch.where(
            mask)[0].tolist()
        assert pred['labels'] == [CLASSES[c] for c in pred['label_indices']]
        assert pred['label_scores'] == sorted(pred['label_scores'],
                                              reverse=True)
        line = f'{pred["image"]}: ' + (', '.join(
            f'{n} ({s:.3f})'
            for n, s in zip(pred['labels'], pred['label_scores']))
                                       or '(no label)')
        assert line in printed
    # CSV: the same labels and scores
    out_csv = tmp_path / 'pred.csv'
    run_main('predict', [
        run.config, run.checkpoint,
        osp.join(run.root, 'val'), '--thresholds', cal_file, '--out', out_csv
    ])
    with open(out_csv, newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['image', 'labels'] + list(CLASSES)
    assert len(rows) == len(preds) + 1
    for row, pred in zip(rows[1:], preds):
        assert row[0] == pred['image']
        assert row[1] == '|'.join(pred['labels'])
        assert [float(v) for v in row[2:]] == pytest.approx(
            pred['scores'], rel=1e-5, abs=1e-6)


def test_uncalibrated_model_says_so(run):
    image = run.val_images()[0]
    printed = run_main('predict', [run.config, run.checkpoint, image])
    assert 'No calibration file is set' in printed
    assert 'uncalibrated' in printed
    line = next(x for x in printed.splitlines() if x.startswith(image))
    assert line.count('(') == 1  # top-1: one label with its score
    printed = run_main('predict',
                       [run.config, run.checkpoint, image, '--topk', '3'])
    line = next(x for x in printed.splitlines() if x.startswith(image))
    assert line.count('(') == 3 and 'No calibration file' not in printed


def test_inferencer_round_trip(run, cal_file, tmp_path):
    """mmpretrain's own inferencer on an mmtwoway config + checkpoint: class
    names from the checkpoint, labels from the config's calibration."""
    from mmpretrain.apis import ImageClassificationInferencer
    cfg = Config.fromfile(run.config)
    cfg.model.head.calibration = cal_file
    config = str(tmp_path / 'calibrated.py')
    cfg.dump(config)
    images = run.val_images()[:6]
    inferencer = ImageClassificationInferencer(
        model=config, pretrained=run.checkpoint, device='cpu')
    plain = inferencer(images)
    # One batch, as tools/predict.py runs them: other batch sizes change the
    # float rounding of the scores, which can flip a score lying within 1e-6
    # of its threshold.
    samples = inferencer(images, return_datasamples=True, batch_size=8)
    out = tmp_path / 'pred.json'
    run_main('predict', [run.config, run.checkpoint] + images +
             ['--thresholds', cal_file, '--out', out])
    with open(out) as f:
        preds = json.load(f)['predictions']
    for result, sample, pred in zip(plain, samples, preds):
        assert result['pred_class'] == CLASSES[result['pred_label']]
        assert sorted(sample.pred_label.tolist()) == sorted(
            pred['label_indices'])
        assert sample.pred_score.tolist() == pytest.approx(
            pred['scores'], abs=1e-5)
        assert sample.decision == f'per-class thresholds from {cal_file}'
        assert sample.decision_classes == CLASSES


def test_errors_name_the_file(run, cal_file, tmp_path):
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'not a png at all')
    with pytest.raises(ValueError, match='broken.png'):
        run_main('predict', [run.config, run.checkpoint, bad])
    with pytest.raises(FileNotFoundError, match='missing.png'):
        run_main('predict',
                 [run.config, run.checkpoint, tmp_path / 'missing.png'])
    image = run.val_images()[0]
    with pytest.raises(ValueError, match=r'epoch_1.pth does not fit .* it '
                       r'has 10 classes .*num_classes is 12.*'
                       r'head.fc.weight \(10, 128\) vs \(12, 128\); '
                       r'head.fc.bias \(10,\) vs \(12,\)'):
        run_main('predict', [
            run.config, run.checkpoint, image, '--cfg-options',
            'model.head.num_classes=12'
        ])
    # a thresholds file of another class list (same count, other names)
    other = str(tmp_path / 'other.json')
    renamed = list(CLASSES)
    renamed[3] = 'drei'
    save_calibration(other, renamed, [0.] * 10, 0.1)
    with pytest.raises(ValueError, match=r"another class list.*class 3 is "
                       r"'drei' there but 'three' here"):
        run_main('predict',
                 [run.config, run.checkpoint, image, '--thresholds', other])
    save_calibration(other, CLASSES[:5], [0.] * 5, 0.1)
    with pytest.raises(ValueError, match='has 5 classes but the model has '
                       '10'):
        run_main('predict',
                 [run.config, run.checkpoint, image, '--thresholds', other])


def test_command_line_error_is_one_line(run, tmp_path, monkeypatch,
                                        capsys):
    """What a user of the command line sees: one line naming the file,
    exit status 1, no traceback."""
    from mmtwoway.apis.cli import run_tool
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'\xff\xd8 truncated')
    monkeypatch.setattr(
        sys, 'argv', ['predict.py', run.config, run.checkpoint,
                      str(bad)])
    with pytest.raises(SystemExit) as exc:
        run_tool(load_tool('predict').main, 'predict.py')
    message = str(exc.value.code)
    assert message.startswith('predict.py: error:') and 'broken.jpg' in message
    assert '\n' not in message


def test_load_model_with_another_head(run, tmp_path):
    """A BCE-style mmpretrain head loads (its scores can be calibrated),
    but takes no calibration file."""
    from mmtwoway.apis import load_model
    cfg = Config.fromfile(run.config)
    cfg.model.head = dict(
        type='MultiLabelLinearClsHead', num_classes=10, in_channels=128)
    state = torch.load(run.checkpoint, map_location='cpu',
                       weights_only=True)
    path = str(tmp_path / 'bce.pth')
    torch.save(dict(state_dict=state['state_dict'], meta=state['meta']),
               path)
    model = load_model(cfg, path, 'cpu', calibration=False)
    assert type(model.head).__name__ == 'MultiLabelLinearClsHead'
    assert model._dataset_meta['classes'] == CLASSES
    cal_file = calibration(run)[0]
    with pytest.raises(ValueError, match='does not take a calibration'):
        load_model(cfg, path, 'cpu', calibration=cal_file)


def _lines(printed):
    """The per-image lines of predict's output: image -> [(label, score)]."""
    out = {}
    for line in printed.splitlines():
        if ': ' in line and line.split(': ')[0].endswith('.png'):
            image, rest = line.split(': ', 1)
            out[image] = [] if rest == '(no label)' else [
                (m[0], float(m[1]))
                for m in re.findall(r'(\w+) \((-?[\d.]+)\)', rest)
            ]
    return out


def assert_same_predictions(torch_out, onnx_out, torch_printed,
                            onnx_printed):
    """Same format, same labels, logits within 1e-4."""
    with open(torch_out) as f:
        ref = json.load(f)
    with open(onnx_out) as f:
        got = json.load(f)
    assert set(got) == set(ref) | {'onnx'}
    assert got['classes'] == ref['classes'] and got['decision'] == ref[
        'decision']
    assert got['config'] == osp.abspath(ref['config'])
    assert len(got['predictions']) == len(ref['predictions'])
    for a, b in zip(ref['predictions'], got['predictions']):
        assert list(a) == list(b)
        assert b['image'] == a['image'] and b['labels'] == a['labels']
        assert b['label_indices'] == a['label_indices']
        assert b['scores'] == pytest.approx(a['scores'], abs=1e-4)
    ref_lines, got_lines = _lines(torch_printed), _lines(onnx_printed)
    assert list(got_lines) == list(ref_lines) and len(ref_lines) == len(
        ref['predictions'])
    for image, labels in ref_lines.items():
        assert [n for n, _ in got_lines[image]] == [n for n, _ in labels]
        for (_, s1), (_, s2) in zip(got_lines[image], labels):
            assert s1 == pytest.approx(s2, abs=1.01e-3)  # printed %.3f
    # how the labels are decided: the same line
    def decided(printed):
        return next(ln for ln in printed.splitlines()
                    if ln.startswith('Labels: '))

    assert decided(onnx_printed) == decided(torch_printed)


def test_predict_onnx_is_the_pytorch_path(run, cal_file, tmp_path):
    """--onnx with the calibrated rule in the graph: the output of the
    PyTorch path with --thresholds, in JSON and CSV."""
    model = onnx_model(run)[0]
    folder = osp.join(run.root, 'val')
    outs = {}
    for ext in ('json', 'csv'):
        ref, got = tmp_path / f'torch.{ext}', tmp_path / f'onnx.{ext}'
        ref_printed = run_main('predict', [
            run.config, run.checkpoint, folder, '--thresholds', cal_file,
            '--out', ref
        ])
        got_printed = run_main('predict',
                               ['--onnx', model, folder, '--out', got])
        outs[ext] = ref, got, ref_printed, got_printed
    assert_same_predictions(outs['json'][0], outs['json'][1],
                            outs['json'][2], outs['json'][3])
    assert f'Labels: per-class thresholds from {cal_file}' in outs['json'][3]
    with open(outs['csv'][0], newline='') as f:
        ref_rows = list(csv.reader(f))
    with open(outs['csv'][1], newline='') as f:
        got_rows = list(csv.reader(f))
    assert got_rows[0] == ref_rows[0] == ['image', 'labels'] + list(CLASSES)
    assert [r[:2] for r in got_rows] == [r[:2] for r in ref_rows]
    for a, b in zip(ref_rows[1:], got_rows[1:]):
        assert [float(v) for v in b[2:]] == pytest.approx(
            [float(v) for v in a[2:]], abs=1e-4)


@pytest.mark.parametrize('args', [['--topk', '3'], ['--thresholds'], []])
def test_predict_onnx_decision_overrides(run, cal_file, tmp_path, args):
    """--topk / --thresholds on the ONNX model, and the logits-only model,
    decide as the PyTorch path does with the same arguments."""
    if args == ['--thresholds']:
        args = ['--thresholds', cal_file]
    images = run.val_images()[:8]
    calibrated = bool(args)
    model = onnx_model(run, calibrated=calibrated)[0]
    ref, got = tmp_path / 'torch.json', tmp_path / 'onnx.json'
    # The logits-only model is compared with the uncalibrated PyTorch path.
    ref_printed = run_main('predict', [run.config, run.checkpoint] + images +
                           args + ['--out', ref])
    got_printed = run_main('predict',
                           ['--onnx', model] + images + args + ['--out', got])
    assert_same_predictions(ref, got, ref_printed, got_printed)
    if not args:
        assert 'No calibration file is set' in got_printed
        assert 'export the model with --calibration FILE' in got_printed


def test_predict_onnx_errors(run, cal_file, tmp_path):
    image = run.val_images()[0]
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        run_main('predict', ['--onnx', tmp_path / 'missing.onnx', image])
    # an ONNX model that is not an mmtwoway export
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    foreign = str(tmp_path / 'foreign.onnx')
    onnx.save(helper.make_model(graph), foreign)
    with pytest.raises(ValueError, match='foreign.onnx has no mmtwoway '
                       'metadata'):
        run_main('predict', ['--onnx', foreign, image])
    other = str(tmp_path / 'other.json')
    renamed = list(CLASSES)
    renamed[3] = 'drei'
    save_calibration(other, renamed, [0.] * 10, 0.1)
    with pytest.raises(ValueError, match=r"another class list than ONNX "
                       r"model .*class 3 is 'drei' there but 'three' here"):
        run_main('predict', ['--onnx', onnx_model(run)[0], image,
                             '--thresholds', other])
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'not a png at all')
    with pytest.raises(ValueError, match='broken.png'):
        run_main('predict', ['--onnx', onnx_model(run)[0], bad])
    # the demo pipeline does not resize: images are batched by size
    from PIL import Image
    big = str(tmp_path / 'big.png')
    Image.open(image).resize((48, 40)).save(big)
    printed = run_main('predict', ['--onnx', onnx_model(run)[0], image, big,
                                   '--batch-size', '2'])
    assert f'{big}: ' in printed and f'{image}: ' in printed
    # CONFIG CHECKPOINT are not taken with --onnx
    with pytest.raises(SystemExit):
        run_main('predict', ['--onnx', onnx_model(run)[0], image,
                             '--cfg-options', 'a=1'])
