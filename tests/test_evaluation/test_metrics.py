"""Tests of ``MultiLabelMAP``, single-process and with two gloo ranks."""
import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.dataset import DefaultSampler
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

from mmtwoway.evaluation import MultiLabelF1, MultiLabelMAP, mean_ap

NUM_CLASSES = 6


def make_samples(n, seed=0, with_idx=True):
    """``n`` data samples as dicts (what mmengine's Evaluator passes):
    odd samples carry a ``gt_score`` with ignored (-1) entries, even ones a
    ``gt_label``; also returns the targets the metric should build."""
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.standard_normal((n, NUM_CLASSES))).float()
    targets = torch.zeros(n, NUM_CLASSES, dtype=torch.int8)
    samples = []
    for i in range(n):
        sample = DataSample().set_pred_score(scores[i])
        if with_idx:
            sample.set_metainfo(dict(sample_idx=i))
        if i % 2:
            score = torch.from_numpy(rng.integers(-1, 2, NUM_CLASSES)).float()
            score[i % NUM_CLASSES] = 1.
            sample.set_gt_score(score)
            targets[i] = score.to(torch.int8)
        else:
            labels = sorted({i % NUM_CLASSES, int(rng.integers(NUM_CLASSES))})
            sample.set_gt_label(labels)
            targets[i, labels] = 1
        samples.append(sample.to_dict())
    return samples, scores, targets


def evaluate(metric, samples, batch_size=4):
    for start in range(0, len(samples), batch_size):
        metric.process(None, samples[start:start + batch_size])
    return metric.evaluate(len(samples))


def test_gt_score_and_gt_label():
    samples, scores, targets = make_samples(40)
    assert (targets < 0).any() and (targets == 0).any()
    result = evaluate(MultiLabelMAP(), samples)
    assert set(result) == {'multi-label/mAP@class', 'multi-label/mAP@sample'}
    for way in ('class', 'sample'):
        value = result[f'multi-label/mAP@{way}']
        assert isinstance(value, float)
        assert value == pytest.approx(
            mean_ap(scores, targets, way).item(), abs=1e-12)
    # And, independently of mean_ap, sklearn on the non-ignored entries.
    # (Imported here: the distributed test's workers import this module and
    # do not need sklearn's second of import time.)
    from sklearn.metrics import average_precision_score
    aps = [
        average_precision_score(t[t >= 0] > 0, s[t >= 0])
        for s, t in zip(scores.T.numpy(), targets.T.numpy())
    ]
    assert result['multi-label/mAP@class'] == pytest.approx(
        100 * np.mean(aps), abs=1e-4)


def test_data_samples_or_dicts_and_gt_label_only():
    samples = [
        DataSample().set_pred_score(torch.tensor([.9, .1, .5])).set_gt_label(
            [0]),
        DataSample().set_pred_score(torch.tensor([.2, .8, .4])).set_gt_label(
            [1, 2]),
        DataSample().set_pred_score(torch.tensor([.3, .7, .6])).set_gt_label(
            [1]),
    ]
    # Class 2: positive 0.4 ranked third among 0.6, 0.5, 0.4 -> AP 1/3;
    # sample 3: class 1 first -> AP 1; class 0 AP 1, class 1 AP 1.
    expected = {
        'multi-label/mAP@class': 100 * (1 + 1 + 1 / 3) / 3,
        'multi-label/mAP@sample': 100.,
    }
    assert evaluate(MultiLabelMAP(), samples) == pytest.approx(expected)
    dicts = [s.to_dict() for s in samples]
    assert evaluate(MultiLabelMAP(), dicts) == pytest.approx(expected)


@pytest.mark.parametrize('difficult_as, value', [('ignore', -1),
                                                 ('negative', 0),
                                                 ('positive', 1)])
def test_gt_label_difficult(difficult_as, value):
    samples, scores, _ = make_samples(30, seed=1)
    rng = np.random.default_rng(2)
    expected_targets = []
    for sample in samples:
        target = torch.zeros(NUM_CLASSES, dtype=torch.int8)
        sample.pop('gt_score', None)
        labels = sample.setdefault('gt_label', torch.tensor([0]))
        target[labels] = 1
        # VOC lists every class with a difficult object; a class that also
        # has a plain one (here the first label) stays positive.
        difficult = [int(labels[0])] + rng.choice(
            NUM_CLASSES, 2, replace=False).tolist()
        sample['gt_label_difficult'] = difficult
        for c in difficult:
            if target[c] <= 0:
                target[c] = value
        expected_targets.append(target)
    expected_targets = torch.stack(expected_targets)
    assert (expected_targets == value).any()
    result = evaluate(MultiLabelMAP(difficult_as=difficult_as), samples)
    for way in ('class', 'sample'):
        assert result[f'multi-label/mAP@{way}'] == pytest.approx(
            mean_ap(scores, expected_targets, way).item(), abs=1e-12)
    plain = evaluate(MultiLabelMAP(), [{
        k: v
        for k, v in s.items() if k != 'gt_label_difficult'
    } for s in samples])
    if difficult_as == 'negative':
        assert result == pytest.approx(plain)
    else:
        assert result != pytest.approx(plain)


def test_duplicates_are_counted_once():
    samples, scores, targets = make_samples(21)
    expected = evaluate(MultiLabelMAP(), samples)
    # The first copy counts, whatever the later ones hold.
    repeated = samples + [dict(s, pred_score=-s['pred_score'])
                          for s in samples[:5]]
    metric = MultiLabelMAP()
    metric.process(None, repeated)
    assert metric.evaluate(len(repeated)) == pytest.approx(expected)
    # Without sample_idx there is nothing to de-duplicate by.
    anonymous = [{k: v
                  for k, v in s.items() if k != 'sample_idx'}
                 for s in repeated]
    assert evaluate(MultiLabelMAP(), anonymous) != pytest.approx(expected)


def test_options_registry_and_errors():
    samples, scores, targets = make_samples(12)
    metric = METRICS.build(
        dict(type='MultiLabelMAP', ways=['sample'], prefix='val'))
    assert isinstance(metric, MultiLabelMAP)
    assert evaluate(metric, samples) == pytest.approx(
        {'val/mAP@sample': mean_ap(scores, targets, 'sample').item()})
    with pytest.raises(ValueError, match='way must be one of'):
        MultiLabelMAP(ways=('class', 'samples'))
    with pytest.raises(ValueError, match='at most once'):
        MultiLabelMAP(ways=('class', 'class'))
    with pytest.raises(ValueError, match='difficult_as'):
        MultiLabelMAP(difficult_as='hard')
    with pytest.raises(ValueError, match='gt_score or a gt_label'):
        MultiLabelMAP().process(None, [dict(pred_score=torch.zeros(3))])
    with pytest.raises(ValueError, match='3 classes'):
        MultiLabelMAP().process(
            None, [dict(pred_score=torch.zeros(3), gt_score=torch.ones(4))])


def _dist_worker(rank, world_size, init_file, out_dir, size):
    """One rank: its shard from DefaultSampler, process, evaluate."""
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world_size)
    try:
        samples, _, _ = make_samples(size)
        sampler = DefaultSampler(samples, shuffle=False)
        shard = [samples[i] for i in sampler]
        assert len(shard) == len(sampler) == (size + 1) // 2
        metric = MultiLabelMAP()
        for start in range(0, len(shard), 4):
            metric.process(None, shard[start:start + 4])
        result = metric.evaluate(size)
        with open(f'{out_dir}/rank{rank}.json', 'w') as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_two_ranks(tmp_path):
    size = 23  # odd: DefaultSampler pads rank 1 with sample 0
    mp.spawn(
        _dist_worker,
        args=(2, str(tmp_path / 'init'), str(tmp_path), size),
        nprocs=2,
        join=True)
    samples, scores, targets = make_samples(size)
    expected = evaluate(MultiLabelMAP(), samples)  # one process, whole set
    assert expected == pytest.approx({
        f'multi-label/mAP@{way}': mean_ap(scores, targets, way).item()
        for way in ('class', 'sample')
    })
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.json') as f:
            assert json.load(f) == pytest.approx(expected, abs=1e-12)
    # The padding copy would change the result if it were counted.
    padded = torch.cat([scores, scores[:1]]), torch.cat([targets, targets[:1]])
    assert mean_ap(*padded, 'class').item() != pytest.approx(
        expected['multi-label/mAP@class'], abs=1e-6)


# ------------------------------------------------ the GPU path, without GPU


def cuda_batch(kind):
    """Data-sample dicts of a batch that ran on (fake) CUDA."""
    samples = []
    for i in range(4):
        sample = dict(pred_score=torch.randn(5, device='cuda'),
                      pred_label=torch.tensor([i], device='cuda'),
                      sample_idx=i)
        if kind == 'score':
            sample['gt_score'] = torch.tensor([1., 0., -1., 0., 1.],
                                              device='cuda')
        else:
            sample['gt_label'] = torch.tensor([i, 4], device='cuda')
            sample['gt_label_difficult'] = torch.tensor([1])
        samples.append(sample)
    return samples


@pytest.mark.parametrize('metric_cls', [MultiLabelMAP, MultiLabelF1])
def test_results_of_a_cuda_batch_are_cpu_tensors(fake_cuda, metric_cls,
                                                 monkeypatch):
    # With gt_score the only value read on the host is the NaN check of
    # the targets; fake mode cannot answer it, so it is replaced by a check
    # that it runs on the CPU copy. process() then runs to the end: every
    # stored tensor is on the CPU.
    from mmtwoway.structures import targets

    def on_cpu(target, what):
        assert target.device.type == 'cpu', what

    monkeypatch.setattr(targets, 'check_target_not_nan', on_cpu)
    metric = metric_cls(topk=1) if metric_cls is MultiLabelF1 else \
        metric_cls()
    metric.process(None, cuda_batch('score'))
    assert len(metric.results) == 4
    for result in metric.results:
        tensors = [v for v in result.values() if isinstance(v, torch.Tensor)]
        assert tensors and all(t.device.type == 'cpu' for t in tensors)


@pytest.mark.parametrize('metric_cls', [MultiLabelMAP, MultiLabelF1])
def test_cuda_labels_are_read_on_the_cpu_after_one_copy_per_batch(
        fake_cuda, op_recorder, syncing_ops, metric_cls):
    # gt_label (and VOC's difficult classes) need values: they must be read
    # on the CPU, after the batch's scores and labels were copied there
    # once each (the run stops at the first read, which fake mode cannot
    # answer even on the CPU).
    metric = metric_cls()
    with op_recorder() as rec, pytest.raises(Exception):
        metric.process(None, cuda_batch('label'))
    reads = [devices for name, devices in rec.calls if name in syncing_ops]
    assert reads and all(devices == {'cpu'} for devices in reads)
    # Before the first read: MAP copied the scores and the labels, F1 the
    # scores and the model's pred_labels (whose range it checks first).
    assert rec.host_copies == 2
