"""The paper's training pipeline (configs/_base_/datasets/coco.py) on images."""
import os.path as osp

import numpy as np
from mmengine.config import Config
from mmpretrain.datasets.transforms import TRANSFORMS
from PIL import Image

import mmtwoway  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_train_pipeline(img_path, seed):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/coco.py'))
    np.random.seed(seed)
    results = dict(img_path=str(img_path))
    for t in cfg.train_pipeline:
        if t['type'] != 'PackInputs':
            results = TRANSFORMS.build(t)(results)
    return results['img']


def test_lighting_noise_does_not_wrap_dark_pixels(tmp_path):
    # A black image: uint8 lighting noise would wrap 0 - eps around to ~250.
    path = tmp_path / 'black.png'
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(path)
    for seed in range(5):
        img = run_train_pipeline(path, seed)
        assert img.shape == (224, 224, 3)
        assert img.dtype == np.float32
        assert np.abs(img).max() < 40, img.max()


def test_train_pipeline_keeps_a_bright_image_bright(tmp_path):
    path = tmp_path / 'white.png'
    Image.fromarray(np.full((256, 256, 3), 230, np.uint8)).save(path)
    img = run_train_pipeline(path, 0)
    assert 150 < img.mean() < 320
