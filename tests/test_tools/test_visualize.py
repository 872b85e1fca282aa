"""tools/visualize.py on a model from a real (tiny) training run."""
import json
import re

import numpy as np
import pytest
from demo_run import calibration, demo_run, load_tool, run_main
from PIL import Image

# Subprocesses, demo training or large models: `make test-fast` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


def has_color(pixels, hex_color, min_pixels=20):
    """Whether at least ``min_pixels`` pixels are (nearly) that colour."""
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    close = np.abs(pixels[..., :3].astype(int) - rgb).max(-1) < 40
    return close.sum() >= min_pixels


def test_png_with_predicted_and_true_labels(run, tmp_path):
    tool = load_tool('visualize')
    cal_file, _ = calibration(run)
    image = run.val_images()[1]
    out = tmp_path / 'vis.png'
    printed = run_main('visualize', [
        run.config, run.checkpoint, image, '--out', out, '--gt-json',
        run.val_json, '--thresholds', cal_file
    ])
    found = re.search(r"predicted (\[.*?\]), true (\[.*?\])", printed)
    predicted, truth = (json.loads(x.replace("'", '"'))
                        for x in found.groups())
    # the true labels are the image's annotations
    with open(run.val_json) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    img_id = next(i['id'] for i in coco['images']
                  if i['file_name'].endswith(image.split('/')[-1]))
    expected = {names[a['category_id']] for a in coco['annotations']
                if a['image_id'] == img_id}
    assert set(truth) == expected
    with Image.open(out) as png:
        assert png.format == 'PNG'
        pixels = np.asarray(png.convert('RGB'))
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500
    # green for a correct label, red for a wrong one, orange for a missed
    assert has_color(pixels, tool.CORRECT) == bool(
        set(predicted) & set(truth))
    assert has_color(pixels, tool.WRONG) == bool(set(predicted) - set(truth))
    assert has_color(pixels, tool.MISSED) == bool(set(truth) - set(predicted))


def test_without_ground_truth_and_errors(run, tmp_path):
    image = run.val_images()[0]
    out = tmp_path / 'plain.png'
    printed = run_main('visualize',
                       [run.config, run.checkpoint, image, '--out', out])
    assert 'true' not in printed and out.exists()
    train_json = run.val_json.replace('instances_val', 'instances_train')
    with pytest.raises(ValueError, match='has no annotated image named '
                       'val_000001.png'):
        run_main('visualize', [
            run.config, run.checkpoint, image, '--out', out, '--gt-json',
            train_json
        ])
    with pytest.raises(FileNotFoundError, match='nowhere.png'):
        run_main('visualize', [
            run.config, run.checkpoint, tmp_path / 'nowhere.png', '--out',
            out
        ])
