"""DeviceJpegDataPreprocessor's batched render against the per-image
resize, its aten ops per batch on fake CUDA, the stream drain before every
device decode and the CPU fallback for a file the device fails on."""
import collections
import io
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.io
from PIL import Image

from mmtwoway.models.data_preprocessors import device_jpeg
from mmtwoway.models.data_preprocessors.device_jpeg import (
    DeviceDecodeWarning, aa_weights, decode_batch, render_batch)
from mmtwoway.structures.crop_plan import DecodePlan, orient_array
from tools.misc.photos import photo, sample_photos

pytestmark = pytest.mark.filterwarnings(
    'ignore:The image decoding:DeprecationWarning')


def reference(img: torch.Tensor, plan: DecodePlan) -> np.ndarray:
    """One image as the workers' geometry has it: crop, PyTorch's
    antialiased resize, window, EXIF orientation, flip (float, H x W x 3)."""
    x0, y0, x1, y1 = plan.box
    out = F.interpolate(img[None, :, y0:y1, x0:x1].double(), size=plan.size,
                        mode='bilinear', antialias=True,
                        align_corners=False)[0]
    if plan.window is not None:
        wx0, wy0, wx1, wy1 = plan.window
        out = out[:, wy0:wy1, wx0:wx1]
    hwc = orient_array(out.permute(1, 2, 0).numpy(), plan.orientation)
    return hwc[:, ::-1] if plan.flip else hwc


@pytest.mark.parametrize('sizes', [(37, 5), (300, 224), (224, 224),
                                   (100, 700), (5, 3)])
def test_weights_are_pytorchs_antialiased_resize(sizes):
    n_in, n_out = sizes
    x = torch.rand(1, 1, 1, n_in, dtype=torch.float64)
    ref = F.interpolate(x, size=(1, n_out), mode='bilinear', antialias=True,
                        align_corners=False)[0, 0, 0]
    ours = torch.from_numpy(aa_weights(n_in, n_out)) @ x[0, 0, 0]
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-9)


def test_batched_render_matches_each_image(monkeypatch):
    rng = np.random.default_rng(0)
    photos = sample_photos()
    images, plans = [], []
    for o in range(1, 9):
        for flip in (False, True):
            h, w = int(rng.integers(90, 200)), int(rng.integers(90, 200))
            img = torch.from_numpy(photo(w, h, rng, photos).copy())
            # Contiguous C x H x W, or the H x W x C view a CPU decode gives.
            img = img.permute(2, 0, 1)
            images.append(img.contiguous() if o % 2 else img)
            x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
            box = (x0, y0, x0 + int(rng.integers(20, w - x0)),
                   y0 + int(rng.integers(20, h - y0)))
            # A 40 x 32 (h x w) result, on the stored axes.
            window = (3, 5, 3 + 32, 5 + 40) if o in (2, 5) else None
            size = (48, 52) if window else (40, 32)
            if o in (5, 6, 7, 8):  # turned by 90 degrees when displayed
                size = (52, 48) if window else (32, 40)
                window = (5, 3, 5 + 40, 3 + 32) if window else None
            plans.append(DecodePlan(box, size, window, o, flip, (h, w)))
    want = np.stack([reference(i, p) for i, p in zip(images, plans)])
    got = render_batch(images, plans, torch.device('cpu'))
    assert got.shape == (16, 3, 40, 32) and got.dtype == torch.float32
    diff = np.abs(got.permute(0, 2, 3, 1).double().numpy() - want)
    assert diff.max() < 1e-3
    # Cut into several padded chunks: the same pixels.
    monkeypatch.setattr(device_jpeg, 'CHUNK_BYTES', 15 * 200 * 200 * 3)
    assert torch.equal(render_batch(images, plans, torch.device('cpu')),
                       got)


def test_fake_cuda_batch_of_128_is_batched(fake_cuda, op_recorder,
                                           syncing_ops):
    rng = np.random.default_rng(1)
    images, plans = [], []
    for k in range(128):
        h, w = (480, 640) if k % 2 else (640, 427)
        images.append(torch.empty((3, h, w), dtype=torch.uint8,
                                  device='cuda'))
        x0, y0 = int(rng.integers(0, 100)), int(rng.integers(0, 100))
        box = (x0, y0, x0 + int(rng.integers(50, 300)),
               y0 + int(rng.integers(50, 300)))
        plans.append(DecodePlan(box, (224, 224), None, 1 + k % 8,
                                bool(k % 3), (h, w)))
    recorder = op_recorder()
    with recorder:
        out = render_batch(images, plans, torch.device('cuda'))
    assert out.device.type == 'cuda' and out.shape == (128, 3, 224, 224)
    ops = collections.Counter(recorder.ops)
    assert ops['_upsample_bilinear2d_aa'] == 0
    # One view and one copy per image into the padded batch, the rest once
    # per batch (the per-image render took about 8 ops plus a resize each).
    assert ops['copy_'] == 128
    assert len(recorder.ops) - ops['device'] < 3 * 128 + 60, ops
    assert not set(recorder.ops) & set(syncing_ops)
    assert recorder.host_copies == 0


def jpeg(img: np.ndarray, **kw) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, 'JPEG', quality=90, **kw)
    return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)


class DeviceRecorder:
    """Stands in for CUDA around torchvision's decoder: the real decoder
    runs on the CPU, ``fails`` are refused as nvJPEG refuses a file, and
    every decode records how many stream drains came before it."""

    def __init__(self, monkeypatch, fails):
        self.real = torchvision.io.decode_jpeg
        self.fails = fails
        self.drains = 0
        self.calls = []  # (device, drains so far)
        monkeypatch.setattr(torchvision.io, 'decode_jpeg', self.decode)
        monkeypatch.setattr(torch.cuda, 'current_stream',
                            lambda device=None: self)

    def synchronize(self):
        self.drains += 1

    def decode(self, data, mode=None, device='cpu', **kw):
        device = torch.device(device)
        self.calls.append((device.type, self.drains))
        batch = data if isinstance(data, list) else [data]
        if device.type == 'cuda' and any(
                any(d is f for f in self.fails) for d in batch):
            raise RuntimeError('nvjpegDecode failed: status 6')
        out = self.real(batch, mode=mode)
        return out if isinstance(data, list) else out[0]


def test_a_device_failure_falls_back_to_the_cpu(monkeypatch):
    rng = np.random.default_rng(2)
    photos = sample_photos()
    files = [jpeg(photo(96, 64, rng, photos)),
             jpeg(photo(80, 120, rng, photos), progressive=True),
             jpeg(photo(64, 64, rng, photos))]
    paths = ['a.jpg', 'refused.jpg', 'c.jpg']
    device = DeviceRecorder(monkeypatch, fails=[files[1]])
    with pytest.warns(DeviceDecodeWarning, match='refused.jpg') as caught:
        out = decode_batch(files, paths, torch.device('cuda'))
    assert len(caught) == 1
    want = device.real(files, mode=torchvision.io.ImageReadMode.RGB)
    assert all(torch.equal(a, b) for a, b in zip(out, want))
    # The batch call, then one call per file on the device, the refused one
    # again on the CPU; a drain before each device decode.
    assert [c[0] for c in device.calls] == ['cuda', 'cuda', 'cuda', 'cpu',
                                            'cuda']
    drains = [n for kind, n in device.calls if kind == 'cuda']
    assert drains == [1, 2, 3, 4]
    # A healthy batch: one call, one drain, no warning.
    device.calls.clear()
    device.drains = 0
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeviceDecodeWarning)
        decode_batch(files[::2], paths[::2], torch.device('cuda'))
    assert device.calls == [('cuda', 1)]


def test_a_file_no_decoder_reads_is_an_error(monkeypatch):
    good = jpeg(photo(64, 48, np.random.default_rng(3), sample_photos()))
    cut = good[:len(good) // 3].clone()
    DeviceRecorder(monkeypatch, fails=[cut])
    with pytest.warns(DeviceDecodeWarning, match='cut.jpg'), \
            pytest.raises(ValueError, match='cut.jpg.*on cpu'):
        decode_batch([good, cut], ['good.jpg', 'cut.jpg'],
                     torch.device('cuda'))


def test_fake_cuda_forward_of_128_jpegs(tmp_path, monkeypatch, fake_cuda,
                                        op_recorder, syncing_ops):
    """The whole training forward of the GPU-decode config's preprocessor
    on a batch of 128 encoded JPEGs: one decode call, batched resize."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import MODELS, TRANSFORMS
    cfg = Config.fromfile('configs/twoway_coco_r50_gpu_decode.py')
    rng = np.random.default_rng(4)
    photos = sample_photos()
    paths = []
    for k, (w, h) in enumerate([(640, 480), (480, 640), (500, 375)]):
        img = Image.fromarray(photo(w, h, rng, photos))
        exif = img.getexif()
        exif[0x0112] = (1, 6, 3)[k]
        paths.append(str(tmp_path / f'{k}.jpg'))
        img.save(paths[-1], quality=90, exif=exif.tobytes())
    pipeline = [TRANSFORMS.build(dict(t)) for t in cfg.train_pipeline]
    np.random.seed(0)
    samples = []
    for k in range(128):
        results = dict(img_path=paths[k % 3])
        for t in pipeline:
            results = t(results)
        samples.append(results)
    data = pseudo_collate(samples)
    pre = MODELS.build(dict(cfg.data_preprocessor, seed=0,
                            decode_device='cpu')).to('cuda')
    # torchvision's decoder stands in for nvJPEG: images on the device.
    decoded = [torch.empty((3, ) + tuple(s.decode_plan.raw_size),
                           dtype=torch.uint8, device='cuda')
               for s in data['data_samples']]
    calls = []

    def fake_decoder(files, mode=None, device='cpu', **kw):
        calls.append(len(files))
        return decoded[:len(files)]

    monkeypatch.setattr(torchvision.io, 'decode_jpeg', fake_decoder)
    recorder = op_recorder()
    with recorder:
        out = pre(data, training=True)['inputs']
    assert out.device.type == 'cuda' and out.shape == (128, 3, 224, 224)
    assert calls == [128]
    ops = collections.Counter(recorder.ops)
    assert ops['_upsample_bilinear2d_aa'] == 0
    # Rendered one image at a time this was about 2,660 ops (1,020 besides
    # device queries, docs/data_pipeline.md); batched, 962 (490).
    assert len(recorder.ops) - ops['device'] < 600, ops
    assert not set(recorder.ops) & set(syncing_ops)
    assert recorder.host_copies == 0
