"""The paper's training augmentation (configs/_base_/datasets/coco.py) on
images: the workers' pipeline, then the data preprocessor's colour part."""
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS, TRANSFORMS
from PIL import Image

import mmtwoway  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def augmented(img_path, seed, copies=4):
    """Float RGB pixels (0-255 scale) after the train pipeline and the
    preprocessor's jitter and lighting, before normalisation."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/coco.py'))
    init_default_scope('mmpretrain')
    np.random.seed(seed)
    pipeline = [TRANSFORMS.build(t) for t in cfg.train_pipeline]
    samples = []
    for _ in range(copies):
        results = dict(img_path=str(img_path))
        for t in pipeline:
            results = t(results)
        samples.append(results)
    data = default_collate(samples)
    assert data['inputs'].dtype == torch.uint8
    pre = MODELS.build(dict(cfg.data_preprocessor, seed=seed))
    x = pre.float_rgb(data)
    return pre.color_augment(x, pre.to_device(pre.draw(x.size(0))))


def test_lighting_noise_does_not_wrap_dark_pixels(tmp_path):
    # A black image: uint8 lighting noise would wrap 0 - eps around to ~250.
    path = tmp_path / 'black.png'
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(path)
    for seed in range(3):
        img = augmented(path, seed)
        assert img.shape == (4, 3, 224, 224)
        assert img.dtype == torch.float32
        assert img.abs().max() < 40, img.abs().max()
        assert img.abs().max() > 0  # the noise is there


def test_train_pipeline_keeps_a_bright_image_bright(tmp_path):
    path = tmp_path / 'white.png'
    Image.fromarray(np.full((256, 256, 3), 230, np.uint8)).save(path)
    img = augmented(path, 0)
    assert 150 < img.mean() < 320
