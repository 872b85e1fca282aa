"""The label convention: target matrices for the losses and the metrics,
on the CPU and on (fake) CUDA tensors."""
import pytest
import torch
from mmpretrain.structures import DataSample

from mmtwoway.structures import (DIFFICULT_TARGETS, build_target,
                                 label_scores, metric_target)


def mixed_batch(device='cpu'):
    a = DataSample().set_gt_label(torch.tensor([0, 2], device=device))
    b = DataSample().set_gt_score(
        torch.tensor([1., -1., 0., 1.], device=device))
    c = DataSample().set_gt_label(torch.tensor([3], device=device))
    d = DataSample().set_gt_label(torch.tensor([], device=device,
                                               dtype=torch.long))
    return [a, b, c, d]


def reference_target(samples, num_classes):
    """The target written entry by entry, as the convention reads."""
    rows = []
    for s in samples:
        if 'gt_score' in s:
            rows.append([float(v) for v in s.gt_score.tolist()])
        else:
            labels = set(s.gt_label.tolist())
            rows.append([1. if c in labels else 0.
                         for c in range(num_classes)])
    return rows


def test_build_target_mixes_gt_label_and_gt_score():
    samples = mixed_batch()
    target = build_target(samples, 4)
    assert target.dtype == torch.float32
    assert target.tolist() == reference_target(samples, 4)
    assert target.tolist()[1] == [1, -1, 0, 1]
    assert target.tolist()[3] == [0, 0, 0, 0]


def test_build_target_of_score_rows_in_any_order():
    samples = [mixed_batch()[1], mixed_batch()[0], mixed_batch()[1]]
    assert build_target(samples, 4).tolist() == reference_target(samples, 4)


def test_build_target_rejects_labels_outside_the_classes():
    bad = DataSample(metainfo=dict(img_path='x.jpg')).set_gt_label([4])
    with pytest.raises(ValueError, match='x.jpg.*outside'):
        build_target([bad], 4)
    negative = DataSample(metainfo=dict(img_path='y.jpg')).set_gt_label(
        torch.tensor([-1]))
    with pytest.raises(ValueError, match='y.jpg'):
        build_target([negative], 4)
    with pytest.raises(ValueError, match='num_classes'):
        build_target([DataSample().set_gt_score(torch.zeros(5))], 4)
    with pytest.raises(ValueError, match='neither gt_label nor gt_score'):
        build_target([DataSample()], 4)


def test_label_scores_and_build_target_agree():
    scores = label_scores(5, [0, 3], negatives=[1])
    sample = DataSample().set_gt_score(torch.from_numpy(scores))
    assert build_target([sample], 5).tolist() == [[1, 0, -1, 1, -1]]


def test_build_target_on_fake_cuda_has_no_sync_and_no_device_mix(fake_cuda):
    # Any value read on the host would raise in fake mode; a CPU row
    # indexed by CUDA labels (the old code) would raise a device error.
    target = build_target(mixed_batch('cuda'), 4, torch.device('cuda'))
    assert target.device.type == 'cuda'
    assert target.shape == (4, 4) and target.dtype == torch.float32
    # The device defaults to that of the labels.
    assert build_target(mixed_batch('cuda'), 4).device.type == 'cuda'


def test_metric_target_reads_values_only_after_one_copy(
        fake_cuda, op_recorder, syncing_ops):
    # The labels of the batch go to the CPU in one copy; every value read
    # (range checks, VOC's difficult classes) happens on the CPU after it.
    # In fake mode a read cannot be answered even on the CPU, so the run
    # stops at the first one: it must be a CPU read, after the one copy.
    samples = [s.to_dict() for s in mixed_batch('cuda')
               if 'gt_label' in s]
    for s in samples:
        s['gt_label_difficult'] = torch.tensor([1])
    with op_recorder() as rec, pytest.raises(Exception):
        metric_target(samples, 4)
    reads = [(name, devices) for name, devices in rec.calls
             if name in syncing_ops]
    assert reads and all(devices == {'cpu'} for _, devices in reads)
    assert rec.host_copies == 1


@pytest.mark.parametrize('difficult_as', sorted(DIFFICULT_TARGETS))
def test_metric_target_difficult_classes(difficult_as):
    # VOC: class 1 only difficult -> difficult_as; class 0 both difficult
    # and plain -> stays positive.
    sample = dict(gt_label=torch.tensor([0]),
                  gt_label_difficult=torch.tensor([0, 1]))
    target = metric_target([sample], 3, difficult_as)
    assert target.tolist() == [[1, DIFFICULT_TARGETS[difficult_as], 0]]


def test_metric_target_signs_scores_and_checks_shapes():
    target = metric_target([dict(gt_score=torch.tensor([.7, -.2, 0.]))], 3)
    assert target.tolist() == [[1, -1, 0]]
    with pytest.raises(ValueError, match='shape'):
        metric_target([dict(gt_score=torch.zeros(4))], 3)
    with pytest.raises(ValueError, match='gt_score or a gt_label'):
        metric_target([dict(pred_score=torch.zeros(3))], 3)
    with pytest.raises(ValueError, match='difficult_as'):
        metric_target([dict(gt_label=torch.tensor([0]))], 3, 'maybe')
