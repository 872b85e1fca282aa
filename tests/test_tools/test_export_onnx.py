"""tools/deployment/export_onnx.py on a real (tiny) training run: the
onnxruntime graph against the PyTorch model on real demo images, its
metadata, and the onnxruntime snippet of docs/deployment.md."""
import json
import math
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from demo_run import (CLASSES, ROOT, calibration, demo_run, onnx_model,
                      run_main)

from mmtwoway.apis import load_model
from mmtwoway.deployment import ImagePreprocessor, read_metadata
from mmtwoway.evaluation.decision import load_calibration, save_calibration

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.fixture(scope='module')
def cal_file(run):
    return calibration(run)[0]


def pytorch_reference(run, calibration_file):
    """The val images as mmpretrain's inferencer preprocesses them, and the
    PyTorch model's logits and decided labels (the head's pred_label)."""
    from mmpretrain.apis import ImageClassificationInferencer
    model = load_model(run.config, run.checkpoint, 'cpu',
                       calibration=calibration_file)
    inferencer = ImageClassificationInferencer(model=model)
    images = run.val_images()
    batch = next(inferencer.preprocess(images, batch_size=len(images)))
    data = model.data_preprocessor(batch, False)
    with torch.no_grad():
        samples = model(data['inputs'], data['data_samples'], mode='predict')
    logits = torch.stack([s.pred_score for s in samples])
    mask = torch.zeros(logits.shape, dtype=torch.bool)
    for row, sample in zip(mask, samples):
        row[sample.pred_label] = True
    return data['inputs'], logits, mask


def check_against_pytorch(path, inputs, logits, mask):
    """onnxruntime's logits within 1e-4 and identical labels, for the whole
    batch and for single images (the batch size is dynamic)."""
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got_logits, got_labels = session.run(['logits', 'labels'],
                                         {'input': inputs.numpy()})
    assert got_labels.dtype == np.bool_ and got_labels.shape == mask.shape
    diff = np.abs(got_logits - logits.numpy()).max()
    assert diff <= 1e-4
    np.testing.assert_array_equal(got_labels, mask.numpy())
    for i in (0, len(inputs) - 1):
        one_logits, one_labels = session.run(
            None, {'input': inputs[i:i + 1].numpy()})
        assert np.abs(one_logits[0] - logits[i].numpy()).max() <= 1e-4
        np.testing.assert_array_equal(one_labels[0], mask[i].numpy())
    return diff


def test_thresholds_in_the_graph_match_pytorch(run, cal_file):
    path, printed = onnx_model(run)
    inputs, logits, mask = pytorch_reference(run, cal_file)
    # the real labels are not trivial: some images get several, some none
    assert mask.any() and not mask.all()
    diff = check_against_pytorch(path, inputs, logits, mask)
    print(f'thresholds: max abs logit diff {diff:.2e}')
    assert 'Outputs: logits, labels' in printed
    assert f'Labels:  per-class thresholds from {cal_file}' in printed
    assert ('Input:   "input": float32 (N, 3, H, W): image at its own size '
            '(no resize; any H and W); RGB, (pixel - mean) / std with mean '
            '[127.5, 127.5, 127.5], std [127.5, 127.5, 127.5]') in printed
    # The tensor rebuilt from the metadata alone is PyTorch's, bit for bit.
    meta = read_metadata(path)
    pre = ImagePreprocessor(meta['preprocessing'])
    np.testing.assert_array_equal(
        pre.batch(run.val_images()), inputs.numpy())


def test_metadata(run, cal_file):
    path = onnx_model(run)[0]
    model = onnx.load(path)
    onnx.checker.check_model(model)
    (inp, ) = model.graph.input
    assert inp.name == 'input'
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == 3  # dynamic batch
    assert [o.name for o in model.graph.output] == ['logits', 'labels']
    assert model.graph.output[1].type.tensor_type.elem_type == \
        onnx.TensorProto.BOOL
    meta = read_metadata(path)
    assert meta['classes'] == list(CLASSES)
    cal = load_calibration(cal_file)
    assert meta['decision']['rule'] == 'thresholds'
    # null (never predicted) where the file has null
    assert meta['decision']['thresholds'] == cal['thresholds']
    assert meta['decision']['source'] == cal_file
    pre = meta['preprocessing']
    assert pre['input'] == 'input' and pre['channel_order'] == 'RGB'
    assert pre['mean'] == [127.5] * 3 and pre['std'] == [127.5] * 3
    assert pre['size'] is None and pre['pipeline'] == [{'type':
                                                        'PackInputs'}]
    assert meta['source'] == dict(
        config=osp.abspath(run.config),
        checkpoint=osp.abspath(run.checkpoint),
        head='TwoWayLinearClsHead')


def test_relative_rule_in_the_graph(run, cal_file, tmp_path):
    cal = load_calibration(cal_file)
    relative = str(tmp_path / 'relative.json')
    thresholds = [math.inf if t is None else t for t in cal['thresholds']]
    save_calibration(relative, cal['classes'], thresholds, cal['delta'],
                     rule='relative')
    path = str(tmp_path / 'relative.onnx')
    printed = run_main('deployment/export_onnx', [
        run.config, run.checkpoint, '--out', path, '--calibration', relative
    ])
    assert 'relative: classes within' in printed
    inputs, logits, mask = pytorch_reference(run, relative)
    # several labels for some image: more than the top-1
    assert (mask.sum(1) > 1).any()
    diff = check_against_pytorch(path, inputs, logits, mask)
    print(f'relative: max abs logit diff {diff:.2e}')
    assert read_metadata(path)['decision']['delta'] == cal['delta']


def test_logits_only_without_calibration(run):
    path, printed = onnx_model(run, calibrated=False)
    assert 'Outputs: logits\n' in printed
    assert 'logits only: no calibrated decision' in printed
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['logits']
    inputs, logits, _ = pytorch_reference(run, None)
    (got, ) = session.run(None, {'input': inputs.numpy()})
    assert np.abs(got - logits.numpy()).max() <= 1e-4
    assert read_metadata(path)['decision']['rule'] == 'none'


def test_deployment_doc_snippet(run, cal_file, tmp_path):
    """The snippet of docs/deployment.md, run on real demo images with only
    onnxruntime, numpy and Pillow imported, prints PyTorch's labels."""
    with open(osp.join(ROOT, 'docs', 'deployment.md'), encoding='utf-8') as f:
        readme = f.read()
    (code, ) = re.findall(
        r'<!-- onnxruntime-snippet -->\n```python\n(.*?)```', readme, re.S)
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 12
    snippet = tmp_path / 'snippet.py'
    snippet.write_text(code)
    (tmp_path / 'model.onnx').symlink_to(onnx_model(run)[0])
    images = run.val_images()[:6]
    driver = (
        'import runpy, sys\n'
        f'for image in {images!r}:\n'
        '    sys.argv = ["snippet.py", image]\n'
        '    runpy.run_path("snippet.py", run_name="__main__")\n'
        'heavy = {m.split(".")[0] for m in sys.modules} & {"torch", '
        '"mmtwoway", "mmcv", "mmengine", "mmpretrain", "cv2"}\n'
        'assert not heavy, heavy\n')
    res = subprocess.run([sys.executable, '-c', driver],
                         cwd=tmp_path,
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    _, _, mask = pytorch_reference(run, cal_file)
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(images)
    for line, image, row in zip(lines, images, mask):
        expected = [name for name, on in zip(CLASSES, row) if on]
        assert line == f'{image} {expected!r}'


def test_export_errors(run, tmp_path):
    with pytest.raises(SystemExit):
        run_main('deployment/export_onnx',
                 [run.config, run.checkpoint, '--out', tmp_path / 'm.pt'])
    other = str(tmp_path / 'other.json')
    save_calibration(other, CLASSES[:5], [0.] * 5, 0.1)
    with pytest.raises(ValueError, match='has 5 classes but the model has '
                       '10'):
        run_main('deployment/export_onnx', [
            run.config, run.checkpoint, '--out', tmp_path / 'm.onnx',
            '--calibration', other
        ])
    assert not osp.exists(tmp_path / 'm.onnx')


def test_fixed_size_pipeline(run, cal_file, tmp_path):
    """A test pipeline that resizes and crops (as the paper configs do):
    the graph's height and width are fixed, the metadata says how the
    image is made, and the rebuilt pipeline (tuples included) gives
    PyTorch's predictions."""
    from mmengine.config import Config
    cfg = Config.fromfile(run.config)
    cfg.test_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=40, edge='short'),
        dict(type='CenterCrop', crop_size=(36, 28)),  # (w, h)
        dict(type='PackInputs')
    ]
    config = str(tmp_path / 'cropped.py')
    cfg.dump(config)
    path = str(tmp_path / 'cropped.onnx')
    printed = run_main('deployment/export_onnx', [
        config, run.checkpoint, '--out', path, '--calibration', cal_file
    ])
    assert ('"input": float32 (N, 3, 28, 36): image short edge resized to '
            '40, center-cropped to 28x36; RGB') in printed
    pre = read_metadata(path)['preprocessing']
    assert pre['size'] == pre['center_crop'] == [28, 36]
    assert pre['resize_short_edge'] == 40 and pre['other_transforms'] == []
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 28, 36]
    images = run.val_images()[:8]
    ref, got = tmp_path / 'torch.json', tmp_path / 'onnx.json'
    run_main('predict', [config, run.checkpoint] + images +
             ['--thresholds', cal_file, '--out', ref])
    run_main('predict', ['--onnx', path] + images + ['--out', got])
    ref, got = json.loads(ref.read_text()), json.loads(got.read_text())
    for a, b in zip(ref['predictions'], got['predictions']):
        assert a['labels'] == b['labels']
        assert b['scores'] == pytest.approx(a['scores'], abs=1e-4)
