"""mean_ap and the metrics on hostile input: the non-finite rule and a fuzz
test against a brute-force AP.

The rule: scores may be +-inf (a ranking orders them), NaN only at ignored
entries; a NaN target is an error naming where it is (the sample's image in
the metrics); an evaluation without samples is a clear error.
"""
import math

import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from mmtwoway.evaluation import MultiLabelF1, MultiLabelMAP, mean_ap
from mmtwoway.evaluation.functional.average_precision import average_precision

INF, NAN = float('inf'), float('nan')


def brute_ap(scores: np.ndarray, targets: np.ndarray, dim: int) -> list:
    """AP of every slice by counting, written from the definition: the mean
    over positives p of #{positives >= s_p} / #{kept entries >= s_p};
    entries with target < 0 removed; None without positives."""
    if dim == 1:
        scores, targets = scores.T, targets.T
    aps = []
    for s, t in zip(scores.T, targets.T):
        kept = [(float(a), float(b)) for a, b in zip(s, t) if b >= 0]
        pos = [a for a, b in kept if b > 0]
        if not pos:
            aps.append(None)
            continue
        aps.append(
            sum(
                sum(q >= p for q in pos) / sum(a >= p for a, _ in kept)
                for p in pos) / len(pos))
    return aps


def brute_map(scores, targets, way):
    aps = [a for a in brute_ap(scores, targets, 0 if way == 'class' else 1)
           if a is not None]
    return 100 * sum(aps) / len(aps) if aps else None


def random_case(rng: np.random.Generator):
    n, c = rng.integers(1, 16), rng.integers(1, 13)
    targets = np.zeros((n, c))
    targets[rng.random((n, c)) < rng.random() * 0.6] = 1
    targets[rng.random((n, c)) < rng.random() * 0.5] = -1
    for axis in (0, 1):
        k = rng.integers(targets.shape[axis])
        line = targets[k] if axis == 0 else targets[:, k]
        kind = rng.integers(5)
        if kind == 0:  # all ignored
            line[:] = -1
        elif kind == 1:  # a single entry left
            line[:] = -1
            line[rng.integers(line.size)] = 1
        elif kind == 2:  # all positive
            line[:] = 1
        elif kind == 3:  # all negative
            line[:] = 0
    scale = rng.choice([1., 1e4, 1e30])
    scores = rng.standard_normal((n, c)) * scale
    if rng.random() < 0.5:  # ties
        scores = np.round(scores / scale, 1) * scale
    special = rng.random((n, c))
    scores[special < 0.1] = INF
    scores[(special >= 0.1) & (special < 0.2)] = -INF
    # NaN is legal where the entry is ignored
    scores[(targets < 0) & (rng.random((n, c)) < 0.5)] = NAN
    return scores, targets


@pytest.mark.parametrize('seed', range(300))
def test_fuzz_mean_ap_equals_the_brute_force_ap(seed):
    rng = np.random.default_rng(seed)
    scores, targets = random_case(rng)
    dtype = (np.float64, np.float32)[seed % 2]
    for way in ('class', 'sample'):
        want = brute_map(scores.astype(dtype), targets, way)
        if want is None:
            with pytest.raises(ValueError, match=f'mAP@{way} is undefined'):
                mean_ap(scores.astype(dtype), targets, way)
            continue
        got = mean_ap(scores.astype(dtype), targets, way).item()
        assert math.isfinite(got) and 0 <= got <= 100
        assert got == pytest.approx(want, abs=1e-9)
    # illegal: a NaN score at a non-ignored entry, or a NaN target
    kept = np.argwhere(targets >= 0)
    if len(kept):
        i, j = kept[rng.integers(len(kept))]
        bad = scores.copy()
        bad[i, j] = NAN
        with pytest.raises(ValueError, match='NaN value.*non-ignored'):
            mean_ap(bad, targets, 'class')
    i, j = rng.integers(scores.shape[0]), rng.integers(scores.shape[1])
    bad_t = targets.copy()
    bad_t[i, j] = NAN
    for way in ('class', 'sample'):
        with pytest.raises(ValueError, match=f'targets has 1 NaN target.*'
                           f'first at sample {i}, class {j}'):
            mean_ap(scores, bad_t, way)


def test_the_issue_example_is_an_error_not_a_choice():
    """TwoWayLoss used to ignore the NaN target, mean_ap to count it as a
    negative (86.1 vs 100.0 mAP): now both refuse it."""
    scores = torch.tensor([[.9, .1, .8], [.2, .7, .3], [.4, .6, .5]])
    targets = torch.tensor([[1., 0, NAN], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match=r'first at sample 0, class 2.*'
                       r'> 0 \(positive\), 0 \(negative\) or < 0 '
                       r'\(ignored'):
        mean_ap(scores, targets)
    with pytest.raises(ValueError, match='NaN'):
        average_precision(scores, targets, dim=1)
    from mmtwoway.models.losses import TwoWayLoss
    assert math.isnan(TwoWayLoss()(scores, targets).item())


def test_integer_targets_are_not_scanned_and_inf_targets_keep_their_sign():
    scores = np.array([[1., 2.], [3., 0.]])
    plain = mean_ap(scores, np.array([[1, 0], [0, 1]]), 'class')
    signed = mean_ap(scores, np.array([[INF, 0.], [0., 2.]]), 'class')
    assert plain.item() == signed.item()


def samples_with(gt_scores, paths=None):
    out = []
    for k, score in enumerate(gt_scores):
        s = DataSample(metainfo=dict(
            img_path=(paths or [f'img_{i}.jpg' for i in range(99)])[k],
            sample_idx=k))
        s.set_pred_score(torch.randn(len(score))).set_gt_score(
            torch.tensor(score))
        out.append(s)
    return out


@pytest.mark.parametrize('metric_cls', [MultiLabelMAP, MultiLabelF1])
def test_metrics_name_the_image_of_a_nan_target(metric_cls):
    metric = metric_cls(topk=1) if metric_cls is MultiLabelF1 else \
        metric_cls()
    samples = samples_with([[1., 0., 0.], [0., NAN, 1.]],
                           ['data/a.jpg', 'data/b.jpg'])
    with pytest.raises(ValueError, match=r'gt_score of image data/b.jpg '
                       r'has 1 NaN target\(s\) \(first at index 1\)'):
        metric.process(None, [s.to_dict() for s in samples])


@pytest.mark.parametrize('metric_cls', [MultiLabelMAP, MultiLabelF1])
def test_an_evaluation_without_samples_is_a_clear_error(metric_cls):
    metric = metric_cls()
    with pytest.raises(ValueError, match=f'{metric_cls.__name__} received '
                       'no sample: the dataloader of this evaluation is '
                       'empty'):
        metric.evaluate(0)
