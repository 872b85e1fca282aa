"""TwoWayLinearClsHead, and TwoWayLoss as a drop-in loss of mmpretrain heads."""
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmtwoway  # noqa: F401
from mmtwoway.structures import build_target
from reference_two_way import ref_bucket


def samples_with_ignored():
    a = DataSample().set_gt_label([0, 2])
    b = DataSample().set_gt_score(torch.tensor([1., -1., 0., 1.]))
    c = DataSample().set_gt_label([3])
    return [a, b, c]


def test_build_target_mixes_gt_label_and_gt_score():
    target = build_target(samples_with_ignored(), 4)
    assert target.tolist() == [[1, 0, 1, 0], [1, -1, 0, 1], [0, 0, 0, 1]]


def test_build_target_rejects_labels_outside_the_classes():
    bad = DataSample(metainfo=dict(img_path='x.jpg')).set_gt_label([4])
    with pytest.raises(ValueError, match='x.jpg'):
        build_target([bad], 4)
    with pytest.raises(ValueError, match='num_classes'):
        build_target([DataSample().set_gt_score(torch.zeros(5))], 4)


def make_head(**kwargs):
    return MODELS.build(
        dict(type='TwoWayLinearClsHead', num_classes=4, in_channels=8,
             **kwargs))


def test_head_loss_sees_ignored_labels_as_ignored():
    torch.manual_seed(0)
    head = make_head()
    feats = (torch.randn(3, 8), )
    losses = head.loss(feats, samples_with_ignored())
    logits = head(feats)
    # The target written by hand from the samples (not by build_target),
    # the loss by the float64 reference written from the equations.
    target = torch.tensor([[1., 0., 1., 0.], [1., -1., 0., 1.],
                           [0., 0., 0., 1.]])
    want = ref_bucket(logits.detach().double(), target.double())
    torch.testing.assert_close(losses['loss'].double(), want, rtol=1e-5,
                               atol=1e-6)
    # the ignored entry receives no gradient
    logits = head(feats).detach().requires_grad_(True)
    head.loss_module(logits, target).backward()
    assert logits.grad[1, 1] == 0 and logits.grad[1, 0] != 0


def test_predictions_hold_raw_logits_and_topk_labels():
    head = make_head(topk=2)
    feats = (torch.randn(2, 8), )
    preds = head.predict(feats)
    logits = head(feats)
    for sample, row in zip(preds, logits):
        torch.testing.assert_close(sample.pred_score, row.detach())
        assert set(sample.pred_label.tolist()) == set(
            row.topk(2).indices.tolist())


def test_per_class_thresholds_decide_labels():
    head = make_head(thr=[0., 100., -100., 0.])
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.copy_(torch.tensor([1., 1., -1., -1.]))
    pred = head.predict((torch.randn(1, 8), ))[0]
    assert pred.pred_label.tolist() == [0, 2]


def test_head_argument_errors():
    with pytest.raises(ValueError, match='topk'):
        make_head(topk=None)
    with pytest.raises(ValueError, match='thr'):
        make_head(thr=[0.5, 0.5])


@pytest.mark.parametrize('head_cfg', [
    dict(type='MultiLabelLinearClsHead', num_classes=5, in_channels=16),
    dict(type='CSRAClsHead', num_classes=5, in_channels=16, num_heads=1,
         lam=0.1),
])
def test_drop_in_loss_of_mmpretrain_heads(head_cfg):
    torch.manual_seed(1)
    head = MODELS.build(
        dict(head_cfg, loss=dict(type='TwoWayLoss', tp=4.0, tn=1.0)))
    feats = (torch.randn(4, 16) if head_cfg['type'].startswith('Multi') else
             torch.randn(4, 16, 3, 3), )
    samples = [DataSample().set_gt_label(lbl) for lbl in ([0], [1, 2], [4],
                                                         [0, 3])]
    loss = head.loss(feats, samples)['loss']
    target = torch.zeros(4, 5)
    for i, lbl in enumerate(([0], [1, 2], [4], [0, 3])):
        target[i, lbl] = 1
    want = ref_bucket(head(feats).detach().double(), target.double())
    torch.testing.assert_close(loss.double(), want, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert all(
        torch.isfinite(p.grad).all() for p in head.parameters()
        if p.grad is not None)


# ------------------------------------------------ the GPU path, without GPU


def test_loss_of_cuda_labels_builds_the_target_on_the_device(fake_cuda):
    # mmpretrain's data preprocessor moves every gt_label to the GPU. The
    # target must be built there: no value read on the host (fake mode
    # raises on any), no CPU row indexed by CUDA labels.
    head = make_head()
    samples = [DataSample().set_gt_label(torch.tensor(lbl, device='cuda'))
               for lbl in ([0, 2], [3], [1])]
    samples.append(DataSample().set_gt_score(
        torch.tensor([1., -1., 0., 0.], device='cuda')))
    logits = torch.randn(4, 4, device='cuda', requires_grad=True)
    loss = head._get_loss(logits, samples)['loss']
    assert loss.device.type == 'cuda' and loss.shape == ()
    assert loss.dtype == torch.float32


@pytest.fixture
def paper_model():
    """The model of configs/twoway_coco_r50.py (random weights, CPU)."""
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'twoway_coco_r50.py'))
    cfg.model.backbone.init_cfg = None
    # As the Runner builds it: the config's data preprocessor (colour
    # jitter, lighting, normalisation) is the model's.
    cfg.model.data_preprocessor = cfg.data_preprocessor
    return MODELS.build(cfg.model)


def test_paper_model_step_on_fake_cuda(paper_model, fake_cuda):
    # configs/twoway_coco_r50.py's whole model on 'cuda': its data
    # preprocessor (BGR->RGB, colour jitter, lighting, normalisation) feeds
    # the head a batch of 128
    # (the paper's per-GPU batch and bucket), loss and all. Fake tensors
    # compute nothing, so the real sizes cost no time. (paper_model is
    # built first, outside the fake mode.)
    model = paper_model.to('cuda')
    assert model.data_preprocessor.device.type == 'cuda'
    labels = [[i % 80, (7 * i) % 80] for i in range(128)]
    # default_collate (the config's collate_fn) stacks the uint8 images.
    data = dict(
        inputs=torch.zeros(128, 3, 224, 224, dtype=torch.uint8),
        data_samples=[DataSample().set_gt_label(lbl) for lbl in labels])
    data = model.data_preprocessor(data, True)
    assert data['inputs'].device.type == 'cuda'
    assert data['inputs'].dtype == torch.float32
    assert data['data_samples'][0].gt_label.device.type == 'cuda'
    losses = model.loss(data['inputs'], data['data_samples'])
    assert losses['loss'].device.type == 'cuda'


def test_losses_run_in_float32_outside_autocast():
    # Under autocast the head's linear layer gives half-precision logits;
    # every loss of the head sees float32 with autocast off.
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, x, y, **kwargs):
            seen.update(dtype=x.dtype,
                        autocast=torch.is_autocast_enabled(x.device.type))
            return x.sum() * 0

    head = make_head()
    head.loss_module = Probe()
    samples = [DataSample().set_gt_label([0]), DataSample().set_gt_label([1])]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        head.loss((torch.randn(2, 8), ), samples)
    assert seen == dict(dtype=torch.float32, autocast=False)


@pytest.mark.parametrize('thr', [None, [0., 0.5, -0.5, 1.]])
def test_predictions_read_the_device_once_per_batch(op_recorder,
                                                    syncing_ops, thr):
    # A fixed number of reads per batch, not one per sample: the decided
    # mask (one copy to the host on a GPU) and, for thresholds, their NaN
    # check, which runs on the CPU copy of the thresholds.
    counts = []
    for n in (2, 64):
        head = make_head(topk=2) if thr is None else make_head(thr=thr)
        feats = (torch.randn(n, 8), )
        with op_recorder() as rec:
            preds = head.predict(feats)
        counts.append(sum(op in syncing_ops for op in rec.ops))
        assert len(preds) == n
    assert counts[0] == counts[1] <= (1 if thr is None else 2), counts
