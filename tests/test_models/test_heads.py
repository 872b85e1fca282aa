"""TwoWayLinearClsHead, and TwoWayLoss as a drop-in loss of mmpretrain heads."""
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmtwoway  # noqa: F401
from mmtwoway.models.heads.two_way_head import build_target
from mmtwoway.models.losses import TwoWayLoss


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
    want = TwoWayLoss()(logits, build_target(samples_with_ignored(), 4))
    torch.testing.assert_close(losses['loss'], want)
    # the ignored entry receives no gradient
    logits = head(feats).detach().requires_grad_(True)
    head.loss_module(logits, build_target(samples_with_ignored(), 4)).backward()
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
    torch.testing.assert_close(loss, TwoWayLoss()(head(feats), target))
    loss.backward()
    assert all(
        torch.isfinite(p.grad).all() for p in head.parameters()
        if p.grad is not None)
