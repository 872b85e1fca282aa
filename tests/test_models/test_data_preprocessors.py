"""ColorAugmentDataPreprocessor and DeviceJpegDataPreprocessor: the
colour jitter and PCA lighting against torchvision and the authors' code,
the parameter distributions, seeds, the device path (fake CUDA: no host
sync, no device mix) and JPEG decoding in the preprocessor."""
import os.path as osp
from itertools import permutations

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate, pseudo_collate
from PIL import Image
from scipy import stats
from torchvision import transforms as T
from torchvision.transforms import functional as TF

import mmtwoway  # noqa: F401  (registers everything)
from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.registry import MODELS, TRANSFORMS
from mmtwoway.models import (ColorAugmentDataPreprocessor,
                             DeviceJpegDataPreprocessor)
from mmtwoway.models.data_preprocessors.device_jpeg import render_batch
from mmtwoway.structures.crop_plan import DecodePlan
from tools.misc.photos import photo, sample_photos

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/coco.py'))
# The authors' lighting: ImageNet eigen-decomposition for [0, 1] RGB.
EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009],
                       [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]])


def authors_lighting(img, alphastd=0.1):
    """AlexNet PCA lighting as the authors' code applies it to a float
    [0, 1] RGB tensor (fb.resnet.torch's formulation)."""
    alpha = img.new_empty(3).normal_(0, alphastd)
    rgb = (EIGVEC * alpha.view(1, 3) * EIGVAL.view(1, 3)).sum(1)
    return img + rgb.view(3, 1, 1)


def config_preprocessor(**kw):
    cfg = dict(CFG.data_preprocessor)
    cfg.update(kw)
    return MODELS.build(cfg)

# torchvision.io's decoders warn of their deprecation on every call.
pytestmark = pytest.mark.filterwarnings(
    'ignore:The image decoding:DeprecationWarning')


@pytest.fixture(scope='module')
def crops():
    """Four 64 x 64 RGB crops of real photos, uint8."""
    rng = np.random.default_rng(0)
    photos = sample_photos()
    return [photo(64, 64, rng, photos) for _ in range(4)]


def test_config_builds_the_papers_parameters():
    pre = config_preprocessor()
    assert isinstance(pre, ColorAugmentDataPreprocessor)
    assert pre.swap_channels and pre.num_classes == 80
    torch.testing.assert_close(pre.jitter_ranges,
                               torch.tensor([[0.6, 1.4]] * 3))
    assert pre.alphastd == 0.1
    torch.testing.assert_close(pre.lighting_basis,
                               (EIGVEC * EIGVAL * 255).t(), atol=1e-4,
                               rtol=1e-4)


@pytest.mark.parametrize('order', list(permutations(range(3))))
def test_jitter_matches_torchvision_on_pil_in_every_order(crops, order):
    """ColorJitter's three operations, applied by torchvision to the PIL
    image in the same order with the same factors (the authors' path)."""
    pre = ColorAugmentDataPreprocessor(
        color_jitter=dict(brightness=0.4, contrast=0.4, saturation=0.4))
    factors = [(0.63, 1.31, 1.38), (1.37, 0.64, 0.71), (0.9, 1.1, 0.61),
               (1.2, 1.39, 1.0)]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    params = dict(order=torch.tensor([order] * 4),
                  factors=torch.tensor(factors))
    out = pre.color_augment(x, params)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
    for i, crop in enumerate(crops):
        ref = Image.fromarray(crop)
        tensor = torch.tensor(crop).permute(2, 0, 1).float() / 255
        for op in order:
            ref = ops[op](ref, factors[i][op])
            tensor = ops[op](tensor, factors[i][op])
        ours = out[i].permute(1, 2, 0).numpy()
        # Pillow truncates to uint8 after each of the three blends (about
        # half a grey level each); torchvision's float version does not.
        assert np.abs(ours - np.asarray(ref)).mean() < 2.0, (order, i)
        assert (out[i] - tensor * 255).abs().mean() < 0.1, (order, i)
        assert ours.min() >= 0 and ours.max() <= 255


def test_parameters_are_distributed_as_colorjitter_draws_them():
    n = 4000
    pre = ColorAugmentDataPreprocessor(
        color_jitter=dict(brightness=0.4, contrast=0.4, saturation=0.4),
        seed=0)
    ours = pre.draw(n)
    jitter = T.ColorJitter(0.4, 0.4, 0.4)
    torch.manual_seed(0)
    ref_orders, ref_factors = [], []
    for _ in range(n):
        fn_idx, b, c, s, _ = jitter.get_params(jitter.brightness,
                                               jitter.contrast,
                                               jitter.saturation, None)
        ref_orders.append(tuple(i for i in fn_idx.tolist() if i < 3))
        ref_factors.append((b, c, s))
    ref_factors = np.array(ref_factors)
    for op in range(3):
        f = ours['factors'][:, op].numpy()
        assert 0.6 <= f.min() < 0.605 and 1.395 < f.max() <= 1.4
        assert stats.ks_2samp(f, ref_factors[:, op]).pvalue > 1e-3, op
    # The order: each of the 6 permutations equally often, as torchvision's
    # randperm (hue, which is off, is left out of its permutation).
    perms = list(permutations(range(3)))
    counts = np.array([
        [sum(tuple(o) == p for o in ours['order'].tolist()) for p in perms],
        [sum(o == p for o in ref_orders) for p in perms]
    ])
    assert counts.sum(1).tolist() == [n, n]
    assert stats.chi2_contingency(counts).pvalue > 1e-3
    assert stats.chisquare(counts[0]).pvalue > 1e-3


def test_lighting_noise_matches_the_authors():
    """The per-channel noise added to every pixel, in 0-255 units."""
    n = 4000
    pre = config_preprocessor(color_jitter=None, seed=1)
    ours = (pre.draw(n)['alpha'] @ pre.lighting_basis).numpy()
    torch.manual_seed(1)
    zeros = torch.zeros(3, 1, 1)
    ref = torch.stack([authors_lighting(zeros).view(3) * 255
                       for _ in range(n)]).numpy()
    for c in range(3):
        assert stats.ks_2samp(ours[:, c], ref[:, c]).pvalue > 1e-3, c
    np.testing.assert_allclose(np.cov(ours.T), np.cov(ref.T), rtol=0.15,
                               atol=0.02)
    # Lighting alone shifts a flat image by its noise, unclipped.
    flat = torch.full((2, 3, 4, 4), 100.)
    params = pre.draw(2)
    out = pre.color_augment(flat, params)
    expected = 100 + params['alpha'] @ pre.lighting_basis
    torch.testing.assert_close(out[:, :, 0, 0], expected)
    assert (out == out[:, :, :1, :1]).all()


def batch(crops, bgr=True):
    imgs = np.stack(crops)
    if bgr:
        imgs = imgs[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(imgs)).permute(
        0, 3, 1, 2).contiguous()


def test_training_batch_is_jitter_then_lighting_then_normalisation(crops):
    pre = config_preprocessor(seed=3)
    out = pre(dict(inputs=batch(crops)), training=True)['inputs']
    twin = config_preprocessor(seed=3)
    params = twin.draw(len(crops))
    x = batch(crops, bgr=False).float()
    manual = (twin.color_augment(x, params) - twin.mean) / twin.std
    torch.testing.assert_close(out, manual)
    # A fixed seed reproduces the batch; another seed changes it.
    again = config_preprocessor(seed=3)(dict(inputs=batch(crops)), True)
    assert torch.equal(again['inputs'], out)
    other = config_preprocessor(seed=4)(dict(inputs=batch(crops)), True)
    assert not torch.allclose(other['inputs'], out)
    # Successive batches get new parameters.
    assert not torch.equal(pre(dict(inputs=batch(crops)), True)['inputs'],
                           out)
    # RGB input without the swap is the same batch.
    rgb = config_preprocessor(seed=3, to_rgb=False)
    torch.testing.assert_close(
        rgb(dict(inputs=batch(crops, bgr=False)), True)['inputs'], out)
    # A float batch given by the caller is left as it was.
    floats = batch(crops, bgr=False).float()
    kept = floats.clone()
    config_preprocessor(seed=3, to_rgb=False)(dict(inputs=floats), True)
    assert torch.equal(floats, kept)


def test_checkpoint_continues_the_parameter_sequence(crops):
    pre = config_preprocessor(seed=5)
    for _ in range(3):
        pre(dict(inputs=batch(crops)), True)
    state = pre.state_dict()
    assert state['_extra_state'] == dict(batches=3)
    resumed = config_preprocessor(seed=5)
    resumed.load_state_dict(state)
    torch.testing.assert_close(resumed.draw(4), pre.draw(4))
    fresh = config_preprocessor(seed=5)
    assert not torch.equal(fresh.draw(4)['factors'],
                           resumed.draw(4)['factors'])


def test_validation_only_normalises_like_clsdatapreprocessor(crops):
    pre = config_preprocessor()
    ref = ClsDataPreprocessor(mean=CFG.data_preprocessor.mean,
                              std=CFG.data_preprocessor.std, to_rgb=True)
    inputs = batch(crops)
    torch.testing.assert_close(pre(dict(inputs=inputs), False)['inputs'],
                               ref(dict(inputs=inputs), False)['inputs'])
    # pseudo_collate's list of images is stacked the same way.
    torch.testing.assert_close(
        pre(dict(inputs=list(inputs)), False)['inputs'],
        ref(dict(inputs=inputs), False)['inputs'])


def test_labels_still_reach_the_data_samples(crops):
    from mmpretrain.structures import DataSample
    pre = config_preprocessor()
    samples = [DataSample().set_gt_label([1, 5]).set_gt_score(
        torch.zeros(80)) for _ in crops]
    out = pre(dict(inputs=batch(crops), data_samples=samples), True)
    assert out['data_samples'][0].gt_label.tolist() == [1, 5]
    assert out['inputs'].dtype == torch.float32


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='hue'):
        ColorAugmentDataPreprocessor(color_jitter=dict(hue=0.1))
    with pytest.raises(ValueError, match='brightness'):
        ColorAugmentDataPreprocessor(color_jitter=dict(brightness=-1))
    with pytest.raises(ValueError, match='contrast'):
        ColorAugmentDataPreprocessor(color_jitter=dict(contrast=(1.5, 0.5)))
    with pytest.raises(ValueError, match='eigvec'):
        ColorAugmentDataPreprocessor(
            lighting=dict(eigval=[1, 2, 3], eigvec=[[1, 2, 3]]))
    with pytest.raises(ValueError, match='eigvec'):
        ColorAugmentDataPreprocessor(lighting=dict(eigval=[1, 2, 3]))
    with pytest.raises(ValueError, match='mean and std'):
        ColorAugmentDataPreprocessor(mean=[0, 0, 0])
    with pytest.raises(ValueError, match='decode_device'):
        DeviceJpegDataPreprocessor(decode_device='gpu')


def test_fake_cuda_batch_has_no_host_sync_and_no_device_mix(
        fake_cuda, op_recorder, syncing_ops):
    pre = config_preprocessor(seed=0).to('cuda')
    inputs = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    recorder = op_recorder()
    with recorder:
        out = pre(dict(inputs=inputs), training=True)['inputs']
    assert out.device.type == 'cuda' and out.shape == (4, 3, 32, 32)
    assert out.dtype == torch.float32
    assert not set(recorder.ops) & set(syncing_ops), recorder.ops
    assert recorder.host_copies == 0
    # (A CPU tensor meeting a CUDA one would have raised in fake mode.)


def test_fake_cuda_render_has_no_host_sync(fake_cuda, op_recorder,
                                           syncing_ops):
    img = torch.empty((3, 480, 640), dtype=torch.uint8, device='cuda')
    plan = DecodePlan(box=(10, 20, 410, 420), size=(224, 224), window=None,
                      orientation=6, flip=True, raw_size=(480, 640))
    recorder = op_recorder()
    with recorder:
        out = render_batch([img], [plan], img.device)
    assert out.device.type == 'cuda' and out.shape == (1, 3, 224, 224)
    assert not set(recorder.ops) & set(syncing_ops)
    assert recorder.host_copies == 0


# ------------------------------------------------- decoding in the model


def pipelines(device):
    """The COCO train pipeline, decoding in the worker or on the device."""
    meta = ('img_path', 'ori_shape', 'img_shape', 'flip', 'flip_direction',
            'decode_plan')
    crop = dict(type='DecodeRandomResizedCrop', scale=96, flip_prob=0.5,
                reduced_decoding=False, decode_on_device=device)
    return [TRANSFORMS.build(crop),
            TRANSFORMS.build(dict(type='PackInputs', meta_keys=meta))]


def run(pipeline, paths, seed):
    np.random.seed(seed)
    out = []
    for path in paths:
        results = dict(img_path=path)
        for t in pipeline:
            results = t(results)
        out.append(results)
    return out


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Three JPEGs (one EXIF-rotated, one grey) and a PNG."""
    root = tmp_path_factory.mktemp('jpegs')
    rng = np.random.default_rng(5)
    photos = sample_photos()
    paths = []
    for n, (size, kind) in enumerate([((320, 240), 'rgb'),
                                      ((240, 320), 'rot'),
                                      ((300, 200), 'grey'),
                                      ((200, 150), 'png')]):
        img = Image.fromarray(photo(*size, rng, photos))
        path = str(root / f'{n}.{"png" if kind == "png" else "jpg"}')
        if kind == 'rot':
            img = img.transpose(Image.ROTATE_90)  # displayed turned back
            exif = img.getexif()
            exif[0x0112] = 6
            img.save(path, quality=92, exif=exif.tobytes())
        elif kind == 'grey':
            img.convert('L').save(path, quality=92)
        else:
            img.save(path, quality=92)
        paths.append(path)
    return paths


@pytest.mark.parametrize('training', [True, False])
def test_device_decoding_gives_the_workers_batch(files, training):
    """CPU fallback of the GPU path: the same batch as decoding in the
    workers (the same crops, flips and colour parameters)."""
    cpu = default_collate(run(pipelines(False), files, seed=7))
    dev = pseudo_collate(run(pipelines(True), files, seed=7))
    kinds = [t.dim() for t in dev['inputs']]
    assert kinds == [1, 1, 1, 3]  # the PNG was decoded by the worker
    a = config_preprocessor(seed=11)(cpu, training)['inputs']
    pre = config_preprocessor(seed=11, type='DeviceJpegDataPreprocessor')
    b = pre(dev, training)['inputs']
    assert a.shape == b.shape == (4, 3, 96, 96)
    # Float vs uint8 rounding of the resize: well under a grey level.
    assert (a - b).abs().mul(58).mean() < 0.6
    assert pre.decoder_device().type == 'cpu'


def test_device_decoding_errors_name_the_file(files, tmp_path):
    dev = pseudo_collate(run(pipelines(True), files[:2], seed=0))
    pre = config_preprocessor(type='DeviceJpegDataPreprocessor')
    # Without the plan in the metainfo: say which PackInputs key is missing.
    for sample in dev['data_samples']:
        sample.set_metainfo(dict(decode_plan=None))
    with pytest.raises(KeyError, match='meta_keys of PackInputs'):
        pre(dev, True)
    # A file whose pixels are damaged after the header was read.
    bad = tmp_path / 'bad.jpg'
    data = open(files[0], 'rb').read()
    bad.write_bytes(data[:len(data) // 3])
    (sample, ) = run(pipelines(True), [str(bad)], seed=0)
    with pytest.raises(ValueError, match='bad.jpg'):
        pre(pseudo_collate([sample]), True)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
def test_cuda_decoding_without_cuda_is_a_clear_error(files):
    dev = pseudo_collate(run(pipelines(True), files[:1], seed=0))
    pre = config_preprocessor(type='DeviceJpegDataPreprocessor',
                              decode_device='cuda')
    with pytest.raises(RuntimeError, match='CUDA is not available'):
        pre(dev, True)
