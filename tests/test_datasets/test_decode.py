"""DecodeRandomResizedCrop / DecodeResizeCenterCrop against torchvision on
real photos: the crop distribution, the resized pixels (reduced-size
decoding included), EXIF orientation, flips, instance boxes, errors."""
import io
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image, ImageOps
from scipy import stats
from torchvision import transforms as T
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import functional as TF

from mmpretrain.registry import TRANSFORMS
from mmtwoway.datasets.transforms import (CropInstance,
                                          DecodeRandomResizedCrop,
                                          DecodeResizeCenterCrop)
from mmtwoway.datasets.image_header import read_header
from mmtwoway.datasets.transforms.decode import resize
from mmtwoway.models.data_preprocessors.device_jpeg import render_batch
from mmtwoway.structures.crop_plan import random_resized_crop_box, reduction
from tools.misc.photos import photo, sample_photos

# torchvision.io's decoders warn of their deprecation on every call.
pytestmark = pytest.mark.filterwarnings(
    'ignore:The image decoding:DeprecationWarning')


@pytest.fixture(scope='module')
def photos():
    return sample_photos()


def save(path, rgb, quality=95, orientation=None, **kw):
    """Write an RGB array; with ``orientation``, stored so that the EXIF
    tag turns it back into ``rgb`` when displayed."""
    img = Image.fromarray(rgb)
    if orientation is not None:
        # exif_transpose applies the tag's transform; store the inverse.
        inverse = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}.get(orientation)
        methods = {2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180,
                   4: Image.FLIP_TOP_BOTTOM, 5: Image.TRANSPOSE,
                   6: Image.ROTATE_270, 7: Image.TRANSVERSE,
                   8: Image.ROTATE_90}
        if inverse:
            img = img.transpose(methods[inverse])
        exif = img.getexif()
        exif[0x0112] = orientation
        kw['exif'] = exif.tobytes()
    img.save(path, quality=quality, **kw)
    return str(path)


def displayed(path):
    """The file as displayed (EXIF applied), RGB: the reference image."""
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert('RGB')


def rgb(results):
    """The transform's ``img`` (BGR by default) as an RGB int array."""
    return np.ascontiguousarray(results['img'][..., ::-1]).astype(int)


# A JPEG decoded at 1/2 (1/4 ...) size by the scaled IDCT keeps its low
# frequencies like an ideal low-pass, a little sharper than the triangle
# filter that torchvision's bilinear resize of the full image stretches over
# the same pixels: on these photos a crop differs from torchvision's by
# 1-3 grey levels on average (JPEG compression at quality 95 alone changes
# it by about 1); reduced_decoding=False is exact.
REDUCED_TOLERANCE = 3.5


def mean_abs(a, b):
    return np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).mean()


# ------------------------------------------------------------- geometry


@pytest.mark.parametrize('size', [(640, 480), (427, 640), (1000, 120)])
def test_crop_boxes_are_distributed_as_torchvision_draws_them(size):
    width, height = size
    n = 3000
    np.random.seed(0)
    torch.manual_seed(0)
    ours = np.array([random_resized_crop_box(width, height)
                     for _ in range(n)], dtype=float)
    img = Image.new('RGB', size)
    tv = []
    for _ in range(n):
        i, j, h, w = T.RandomResizedCrop.get_params(img, (0.08, 1.0),
                                                    (3 / 4, 4 / 3))
        tv.append((j, i, j + w, i + h))
    tv = np.array(tv, dtype=float)

    def features(b):
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return dict(area=w * h / (width * height), log_aspect=np.log(w / h),
                    cx=(b[:, 0] + b[:, 2]) / 2 / width,
                    cy=(b[:, 1] + b[:, 3]) / 2 / height)

    fo, ft = features(ours), features(tv)
    for key in fo:
        # Two samples of one distribution: the KS test rarely rejects.
        assert stats.ks_2samp(fo[key], ft[key]).pvalue > 1e-3, key
        assert abs(fo[key].mean() - ft[key].mean()) < 0.03 * (
            1 + abs(ft[key].mean())), key
    assert (ours[:, 0] >= 0).all() and (ours[:, 2] <= width).all()
    assert (ours[:, 1] >= 0).all() and (ours[:, 3] <= height).all()
    # The share of centre fallbacks (ten failed tries) agrees too.
    full_h = np.mean(ours[:, 3] - ours[:, 1] == height)
    assert abs(full_h - np.mean(tv[:, 3] - tv[:, 1] == height)) < 0.04


def test_fallback_is_torchvisions_centre_crop():
    np.random.seed(0)
    # No crop of 8-100% of these images has an aspect ratio in [3/4, 4/3]:
    # every try fails and both take the centre fallback.
    for size in [(1000, 10), (10, 1000)]:
        i, j, h, w = T.RandomResizedCrop.get_params(
            Image.new('RGB', size), (0.08, 1.0), (3 / 4, 4 / 3))
        assert random_resized_crop_box(*size) == (j, i, j + w, i + h)
    assert random_resized_crop_box(1000, 10) == (493, 0, 506, 10)
    assert random_resized_crop_box(300, 300, max_attempts=0) == (0, 0, 300,
                                                                 300)


def test_reduction_keeps_the_output_resolution():
    assert reduction(640, 480, 224, 224) == 2
    assert reduction(447, 600, 224, 224) == 1
    assert reduction(1800, 1800, 224, 224) == 8
    assert reduction(1800, 1800, 224, 224, largest=4) == 4
    assert reduction(896, 900, 224, 224) == 4


@pytest.mark.parametrize('size', [(640, 427), (320, 214), (1280, 854),
                                  (150, 100)])
def test_resize_matches_torchvision_on_pil(photos, size):
    """The kernel: PyTorch's antialiased uint8 bilinear vs Pillow's."""
    img = np.asarray(Image.fromarray(photos[1]).resize(size, Image.LANCZOS))
    pil = Image.fromarray(img)
    w, h = size
    for box in [(0, 0, w, h), (w // 5, h // 7, w - w // 9, h - 3),
                (3, 2, 3 + w // 4, 2 + h // 3)]:
        x0, y0, x1, y1 = box
        ours = resize(img[y0:y1, x0:x1], (224, 224)).permute(1, 2, 0)
        ref = TF.resized_crop(pil, y0, x0, y1 - y0, x1 - x0, [224, 224],
                              T.InterpolationMode.BILINEAR)
        assert mean_abs(ours, ref) <= 2.5, (size, box)
        # In fact the kernels agree to a grey level almost everywhere.
        assert mean_abs(ours, ref) < 0.1


# ---------------------------------------------- the transforms, pixels


def reference_crop(img, drawn, out, size):
    """torchvision's crop of the drawn box or, where the transform decoded
    at reduced size, Pillow's resize of the box it actually took (the
    drawn one moved by at most half a reduced pixel per edge)."""
    factor = out['decode_reduction']
    if factor == 1:
        assert out['crop_box'] == tuple(drawn)
        x0, y0, x1, y1 = drawn
        return TF.resized_crop(img, y0, x0, y1 - y0, x1 - x0, size)
    for got, want in zip(out['crop_box'], drawn):
        assert abs(got - want) <= factor / 2 + 1e-6
    return img.resize(size[::-1], Image.BILINEAR, box=out['crop_box'])


@pytest.mark.parametrize('backend', ['torchvision', 'cv2', 'pillow'])
@pytest.mark.parametrize('size', [(640, 480), (1400, 1050), (300, 200)])
def test_random_resized_crop_matches_torchvision(tmp_path, photos, backend,
                                                 size):
    rng = np.random.default_rng(1)
    path = save(tmp_path / 'a.jpg', photo(*size, rng, photos))
    ref_img = displayed(path)
    t = DecodeRandomResizedCrop(scale=224, backend=backend)
    reduced = []
    for seed in range(12):
        np.random.seed(seed)
        drawn = random_resized_crop_box(*size)
        np.random.seed(seed)
        out = t(dict(img_path=path))
        assert out['img'].shape == (224, 224, 3)
        assert out['img_shape'] == (224, 224)
        assert out['ori_shape'] == (size[1], size[0])
        assert out['flip'] is False
        ref = reference_crop(ref_img, drawn, out, [224, 224])
        diff = mean_abs(rgb(out), ref)
        if out['decode_reduction'] == 1:
            assert diff < 0.3, seed  # the same pixels, the same kernel
        else:
            reduced.append(diff)
            assert diff <= REDUCED_TOLERANCE, (seed, out['decode_reduction'])
    if size == (1400, 1050):
        assert reduced  # large crops of large images were reduced
    if reduced:
        assert np.mean(reduced) <= 2.5


@pytest.mark.parametrize('size', [(640, 480), (480, 640), (1300, 1100),
                                  (200, 150)])
def test_resize_center_crop_matches_torchvision(tmp_path, photos, size):
    path = save(tmp_path / 'a.jpg', photo(*size, np.random.default_rng(2),
                                          photos))
    out = DecodeResizeCenterCrop(resize=256, crop_size=224)(
        dict(img_path=path))
    ref = T.Compose([T.Resize(256), T.CenterCrop(224)])(displayed(path))
    assert out['img'].shape == (224, 224, 3)
    assert out['decode_reduction'] == (4 if size == (1300, 1100) else 1)
    assert mean_abs(rgb(out), ref) <= (2.5 if size == (1300, 1100) else 0.3)
    # Without reduced decoding it is torchvision's result.
    full = DecodeResizeCenterCrop(reduced_decoding=False)(dict(img_path=path))
    assert mean_abs(rgb(full), ref) < 0.3


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize('backend', ['torchvision', 'cv2', 'pillow'])
def test_exif_orientation_is_applied(tmp_path, photos, orientation, backend):
    """Boxes are drawn on the displayed image, as OpenCV shows it."""
    rng = np.random.default_rng(orientation)
    shown = photo(1000, 700, rng, photos)
    path = save(tmp_path / 'o.jpg', shown, orientation=orientation)
    ref_img = displayed(path)
    assert ref_img.size == (1000, 700)
    header = read_header(open(path, 'rb').read(), path)
    assert (header.width, header.height, header.orientation) == (
        1000, 700, orientation)
    t = DecodeRandomResizedCrop(scale=224, backend=backend)
    factors = set()
    for seed in range(8):
        np.random.seed(seed)
        drawn = random_resized_crop_box(1000, 700)
        np.random.seed(seed)
        out = t(dict(img_path=path))
        ref = reference_crop(ref_img, drawn, out, [224, 224])
        factors.add(out['decode_reduction'])
        assert mean_abs(rgb(out), ref) < (
            0.3 if out['decode_reduction'] == 1 else REDUCED_TOLERANCE), (
                seed, factors)
    assert len(factors) > 1  # full and reduced decoding both checked
    # The test transform too.
    out = DecodeResizeCenterCrop(resize=128, crop_size=112,
                                 backend=backend)(dict(img_path=path))
    ref = T.Compose([T.Resize(128), T.CenterCrop(112)])(ref_img)
    assert mean_abs(rgb(out), ref) < 2.5


@pytest.mark.parametrize('orientation', [1, 3, 6, 7, 8])
def test_device_plan_reproduces_the_cpu_result(tmp_path, photos,
                                               orientation):
    """Bytes + plan, decoded by torchvision and rendered as the GPU does,
    give the CPU transform's pixels (decoded at full size there)."""
    path = save(tmp_path / 'o.jpg',
                photo(900, 600, np.random.default_rng(0), photos),
                orientation=orientation)
    for cls, kw in ((DecodeRandomResizedCrop, dict(flip_prob=0.5)),
                    (DecodeResizeCenterCrop, {})):
        for seed in range(4):
            np.random.seed(seed)
            cpu = cls(reduced_decoding=False, channel_order='rgb', **kw)(
                dict(img_path=path))
            np.random.seed(seed)
            dev = cls(decode_on_device=True, **kw)(dict(img_path=path))
            assert dev['img'].dtype == torch.uint8 and dev['img'].dim() == 1
            assert dev['flip'] == cpu['flip']
            assert dev['img_shape'] == cpu['img_shape']
            pixels = decode_jpeg(dev['img'], mode=ImageReadMode.RGB)
            out = render_batch([pixels], [dev['decode_plan']],
                               torch.device('cpu'))[0]
            ours = out.round().clamp(0, 255).permute(1, 2, 0).numpy()
            assert ours.shape == cpu['img'].shape
            assert mean_abs(ours, cpu['img']) < 0.6, (cls, seed)


def test_flip_rate_and_mirror(tmp_path, photos):
    path = save(tmp_path / 'f.png', photos[0][::4, ::4], quality=None)
    t = DecodeRandomResizedCrop(scale=32, flip_prob=0.5)
    np.random.seed(0)
    flips = [t(dict(img_path=path))['flip'] for _ in range(600)]
    # Binomial(600, 0.5): 300 +- 12.2; a 4-sigma band.
    assert abs(sum(flips) - 300) < 50
    never = DecodeRandomResizedCrop(scale=32)
    always = DecodeRandomResizedCrop(scale=32, flip_prob=1.0)
    np.random.seed(3)
    a = never(dict(img_path=path))
    np.random.seed(3)
    b = always(dict(img_path=path))
    assert b['flip'] and b['flip_direction'] == 'horizontal'
    assert not a['flip'] and a['flip_direction'] is None
    np.testing.assert_array_equal(a['img'][:, ::-1], b['img'])


def test_pack_inputs_gives_chw_uint8(tmp_path, photos):
    path = save(tmp_path / 'p.jpg', photos[0])
    pack = TRANSFORMS.build(dict(type='PackInputs'))
    np.random.seed(0)
    out = DecodeRandomResizedCrop(flip_prob=0.5)(dict(img_path=path))
    packed = pack(dict(out))
    assert packed['inputs'].shape == (3, 224, 224)
    assert packed['inputs'].dtype == torch.uint8
    np.testing.assert_array_equal(packed['inputs'].permute(1, 2, 0).numpy(),
                                  out['img'])


def test_channel_order_grey_png_and_cmyk(tmp_path, photos):
    img = photo(400, 300, np.random.default_rng(0), photos)
    png = save(tmp_path / 'a.png', img, quality=None)
    t = DecodeResizeCenterCrop(resize=300, crop_size=300)
    bgr = t(dict(img_path=png))['img']
    rgb_out = DecodeResizeCenterCrop(resize=300, crop_size=300,
                                     channel_order='rgb')(dict(img_path=png))
    np.testing.assert_array_equal(bgr[..., ::-1], rgb_out['img'])
    np.testing.assert_array_equal(rgb_out['img'], img[:, 50:350])
    # A PNG named .jpg (as some SUN397 files are): found out by its header.
    fake = tmp_path / 'fake.jpg'
    Image.fromarray(img).save(fake, format='PNG')
    np.testing.assert_array_equal(t(dict(img_path=str(fake)))['img'], bgr)
    grey = tmp_path / 'g.jpg'
    Image.fromarray(img).convert('L').save(grey, quality=95)
    out = t(dict(img_path=str(grey)))['img']
    assert out.shape == (300, 300, 3)
    assert (out[..., 0] == out[..., 1]).all()
    cmyk = tmp_path / 'c.jpg'
    Image.fromarray(img).convert('CMYK').save(cmyk, quality=95)
    out = t(dict(img_path=str(cmyk)))['img']
    assert mean_abs(out[..., ::-1], img[:, 50:350]) < 3
    # CMYK is not nvJPEG's: the worker decodes it even when asked not to.
    dev = DecodeResizeCenterCrop(resize=300, crop_size=300,
                                 decode_on_device=True)(dict(img_path=str(
                                     cmyk)))
    assert dev['decode_plan'] is None and dev['img'].shape == (300, 300, 3)


def test_an_already_loaded_image_is_used(photos):
    """mmpretrain's inferencer passes ``img`` (BGR) without a path."""
    bgr = np.ascontiguousarray(photos[0][..., ::-1])
    out = DecodeResizeCenterCrop()(dict(img=bgr))
    ref = T.Compose([T.Resize(256), T.CenterCrop(224)])(
        Image.fromarray(photos[0]))
    assert mean_abs(rgb(out), ref) < 0.3
    assert out['ori_shape'] == (427, 640)


def test_instance_context_crops_the_box_first(tmp_path, photos):
    img = photos[0]
    path = save(tmp_path / 'i.png', img, quality=None)
    box = [100.5, 40, 350, 300.2]
    crop = CropInstance(context=1.2)(dict(img=img.copy(),
                                          instance_bbox=box))
    cropped = save(tmp_path / 'c.png', crop['img'], quality=None)
    for cls in (DecodeRandomResizedCrop, DecodeResizeCenterCrop):
        np.random.seed(5)
        a = cls(instance_context=1.2)(dict(img_path=path, instance_bbox=box))
        np.random.seed(5)
        b = cls()(dict(img_path=cropped))
        np.testing.assert_array_equal(a['crop_bbox'], crop['crop_bbox'])
        np.testing.assert_array_equal(a['img'], b['img'])
    with pytest.raises(KeyError, match='no "instance_bbox"'):
        DecodeRandomResizedCrop(instance_context=1.0)(dict(img_path=path))
    with pytest.raises(ValueError, match='does not overlap'):
        DecodeRandomResizedCrop(instance_context=1.0)(
            dict(img_path=path, instance_bbox=[700, 0, 800, 10]))


def test_errors_name_the_file_and_the_argument(tmp_path):
    missing = str(tmp_path / 'nope.jpg')
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        DecodeRandomResizedCrop()(dict(img_path=missing))
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not an image at all')
    with pytest.raises(ValueError, match='broken.jpg.*not a readable image'):
        DecodeResizeCenterCrop()(dict(img_path=str(broken)))
    # A JPEG cut short: the header is fine, the pixels are not all there.
    buf = io.BytesIO()
    Image.new('RGB', (500, 400), (10, 200, 30)).save(buf, 'JPEG')
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(buf.getvalue()[:300])
    for backend in ('torchvision', 'cv2', 'pillow'):
        with pytest.raises(ValueError, match='cut.jpg'):
            DecodeResizeCenterCrop(backend=backend)(dict(img_path=str(cut)))
    with pytest.raises(KeyError, match='img_path'):
        DecodeRandomResizedCrop()(dict())
    for kwargs, word in [(dict(backend='turbo'), 'backend'),
                         (dict(channel_order='bgra'), 'channel_order'),
                         (dict(flip_prob=2), 'flip_prob'),
                         (dict(scale=0), 'scale'),
                         (dict(crop_ratio_range=(0.5, 0.1)),
                          'crop_ratio_range'),
                         (dict(instance_context=0), 'instance_context')]:
        with pytest.raises(ValueError, match=word):
            DecodeRandomResizedCrop(**kwargs)
    with pytest.raises(ValueError, match='crop_size'):
        DecodeResizeCenterCrop(resize=200, crop_size=224)


def test_registered_and_rectangular_outputs(tmp_path, photos):
    path = save(tmp_path / 'r.jpg', photos[1])
    t = TRANSFORMS.build(dict(type='DecodeRandomResizedCrop',
                              scale=(160, 96)))
    assert 'scale=(160, 96)' in repr(t)
    np.random.seed(0)
    assert t(dict(img_path=path))['img'].shape == (96, 160, 3)
    assert isinstance(TRANSFORMS.build(dict(type='DecodeResizeCenterCrop')),
                      DecodeResizeCenterCrop)
    assert math.isclose(t.aspect_ratio_range[1], 4 / 3)


def test_paper_pipelines_resize_with_antialiasing():
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(
        osp.join(root, 'configs', '_base_', 'datasets', 'coco.py'))
    train = [t['type'] for t in cfg.train_pipeline]
    test = [t['type'] for t in cfg.test_pipeline]
    # The paper pipelines decode and resize in one antialiased transform
    # (compared with torchvision above); never cv2's plain bilinear.
    assert train[0] == 'DecodeRandomResizedCrop'
    assert test[0] == 'DecodeResizeCenterCrop'
    assert not {'RandomResizedCrop', 'ResizeEdge', 'Resize'} & set(train +
                                                                    test)
