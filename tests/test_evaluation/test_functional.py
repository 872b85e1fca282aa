"""Tests of ``mmtwoway.evaluation.functional``: AP and the two mAPs."""
import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from mmtwoway.evaluation import average_precision, mean_ap
from mmtwoway.evaluation.functional.average_precision import rank_positives


def random_problem(shape, seed, rate=0.2):
    """Tie-free scores and 0/1 targets; every row and column has a positive,
    so sklearn's averages are defined everywhere."""
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal(shape)
    targets = (rng.random(shape) < rate).astype(np.int64)
    n, c = shape
    k = np.arange(max(n, c))
    targets[k % n, k % c] = 1
    return scores, targets


def sklearn_ap(scores, targets, dim):
    """sklearn's AP of every column (dim=0) or row (dim=1), ignored
    (negative) targets dropped first; NaN without positives."""
    if dim == 1:
        scores, targets = scores.T, targets.T
    aps = []
    for s, t in zip(scores.T, targets.T):
        keep = t >= 0
        s, t = s[keep], t[keep]
        aps.append(average_precision_score(t > 0, s) if
                   (t > 0).any() else np.nan)
    return np.array(aps)


@pytest.mark.parametrize('shape', [(57, 9), (300, 20), (8, 45)])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_mean_ap_equals_sklearn(shape, seed):
    scores, targets = random_problem(shape, seed)
    macro = 100 * average_precision_score(targets, scores, average='macro')
    samples = 100 * average_precision_score(
        targets, scores, average='samples')
    assert mean_ap(scores, targets, 'class').item() == pytest.approx(
        macro, abs=1e-10)
    assert mean_ap(scores, targets, 'sample').item() == pytest.approx(
        samples, abs=1e-10)


@pytest.mark.parametrize('dim', [0, 1])
@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_ties_as_sklearn(dim, dtype):
    scores, targets = random_problem((400, 30), seed=3)
    # One decimal: about 60 distinct values, so most entries are tied.
    scores = np.round(scores, 1).astype(dtype)
    ap = average_precision(scores, targets, dim=dim).numpy()
    np.testing.assert_allclose(ap, sklearn_ap(scores, targets, dim),
                               rtol=0, atol=1e-12)


def test_hand_computed_values():
    scores = torch.tensor([[0.9, 0.9], [0.8, 0.8], [0.7, 0.8], [0.6, 0.6]])
    targets = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]])
    # Column 0: positives at ranks 1 and 3: (1/1 + 2/3) / 2.
    # Column 1: a positive tied with a negative at 0.8: the tie group ends
    # at rank 3, so (1/3 + 2/4) / 2.
    ap = average_precision(scores, targets, dim=0)
    assert ap.tolist() == pytest.approx([5 / 6, 5 / 12], abs=1e-15)
    assert mean_ap(scores, targets, 'class').item() == pytest.approx(
        100 * (5 / 6 + 5 / 12) / 2, abs=1e-12)


@pytest.mark.parametrize('dim', [0, 1])
def test_ignored_entries_are_dropped(dim):
    scores, targets = random_problem((200, 25), seed=4, rate=0.3)
    rng = np.random.default_rng(5)
    targets = np.where(rng.random(targets.shape) < 0.2, -1, targets)
    # Some ties too, so that ignored entries also sit inside tie groups.
    scores = np.round(scores, 1)
    ap = average_precision(scores, targets, dim=dim).numpy()
    expected = sklearn_ap(scores, targets, dim)
    np.testing.assert_allclose(ap, expected, rtol=0, atol=1e-12)
    assert np.isnan(ap).sum() == np.isnan(expected).sum()
    # Dropping the entries is not the same as calling them negatives.
    as_negative = average_precision(scores, np.maximum(targets, 0), dim=dim)
    assert not np.allclose(as_negative.numpy(), ap, equal_nan=True)


def test_ignored_entries_and_infinite_scores():
    # An ignored entry is ranked internally at -inf: a real -inf score must
    # still count it out. sklearn rejects inf, so compare with -1e300.
    scores = np.array([[2.0], [-np.inf], [-np.inf], [1.0], [-np.inf], [0.5]])
    targets = np.array([[0], [1], [-1], [1], [0], [-1]])
    finite = np.where(np.isinf(scores), -1e300, scores)
    expected = sklearn_ap(finite, targets, dim=0)
    assert expected[0] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert average_precision(scores, targets, dim=0).numpy() == \
        pytest.approx(expected, abs=1e-15)


def test_slices_without_positives_are_left_out():
    scores, targets = random_problem((150, 12), seed=6)
    targets[:, [3, 7]] = 0
    targets[:, 9] = np.where(targets[:, 9] > 0, -1, targets[:, 9])
    ap = average_precision(scores, targets, dim=0).numpy()
    assert np.isnan(ap[[3, 7, 9]]).all()
    keep = [c for c in range(12) if c not in (3, 7, 9)]
    expected = 100 * average_precision_score(
        targets[:, keep], scores[:, keep], average='macro')
    got = mean_ap(scores, targets, 'class').item()
    assert got == pytest.approx(expected, abs=1e-10)
    # mmpretrain's AveragePrecision would count the three classes as 0.
    assert got > expected * 9 / 12 + 1

    targets[[0, 5], :] = 0
    per_sample = sklearn_ap(scores, targets, dim=1)
    assert np.isnan(per_sample[[0, 5]]).all()
    assert mean_ap(scores, targets, 'sample').item() == pytest.approx(
        100 * np.nanmean(per_sample), abs=1e-10)


def test_input_types_and_no_side_effects():
    scores, targets = random_problem((60, 10), seed=7)
    expected = mean_ap(scores, targets, 'class')
    assert expected.dim() == 0 and expected.dtype == torch.float64
    s = torch.from_numpy(scores.astype(np.float32))
    t = torch.from_numpy(targets).float()
    before = s.clone()
    for dim in (0, 1):
        average_precision(s, t, dim=dim)
        assert torch.equal(s, before)  # the sort works on a copy
    assert mean_ap(s, t, 'class').item() == pytest.approx(
        expected.item(), abs=1e-4)
    # Reversed views and plain lists are fine too.
    flipped = mean_ap(scores[::-1], targets[::-1], 'class')
    assert flipped.item() == pytest.approx(expected.item(), abs=1e-10)
    assert mean_ap(scores.tolist(), targets.tolist(),
                   'class').item() == pytest.approx(expected.item(), abs=1e-10)
    # Integer and half scores are ranked like the floats they stand for.
    ints = np.argsort(np.argsort(scores, axis=0), axis=0)
    assert mean_ap(ints, targets, 'class').item() == pytest.approx(
        expected.item(), abs=1e-10)
    assert mean_ap(s.half(), t.bool(), 'sample').isfinite()
    # Gradients and devices do not matter.
    assert mean_ap(s.requires_grad_(), t, 'class').item() == pytest.approx(
        expected.item(), abs=1e-4)


@pytest.mark.parametrize('dim', [0, 1])
def test_rank_positives_counts(dim):
    scores, targets = random_problem((40, 15), seed=9, rate=0.3)
    scores = np.round(scores, 1)
    targets[np.random.default_rng(10).random(targets.shape) < 0.1] = -1
    ranks = rank_positives(scores, targets, dim=dim)
    s, t = (scores.T, targets.T) if dim == 0 else (scores, targets)
    real = ranks.real_mask()
    assert ranks.num_positives().tolist() == (t > 0).sum(1).tolist()
    assert ranks.num_ignored.tolist() == (t < 0).sum(1).tolist()
    for k in range(len(s)):
        # Brute force: every positive against every entry of its slice.
        pos = np.sort(s[k][t[k] > 0])
        valid = s[k][t[k] >= 0]
        assert ranks.queries[k][real[k]].tolist() == pos.tolist()
        assert ranks.hits[k][real[k]].tolist() == [(pos >= q).sum()
                                                   for q in pos]
        assert ranks.retrieved[k][real[k]].tolist() == [(valid >= q).sum()
                                                        for q in pos]
        assert ranks.ranked[k, ranks.num_ignored[k]:].tolist() == sorted(
            valid.tolist())
    with pytest.raises(ValueError, match='empty'):
        rank_positives(np.zeros((0, 3)), np.zeros((0, 3)))


def test_empty_inputs():
    assert average_precision(np.zeros((0, 3)), np.zeros((0, 3))).isnan().all()
    assert average_precision(np.zeros((4, 0)), np.zeros((4, 0)),
                             dim=1).isnan().all()


def test_errors():
    scores, targets = random_problem((20, 5), seed=8)
    with pytest.raises(ValueError, match=r'\(20, 5\).*\(20, 4\)'):
        average_precision(scores, targets[:, :4])
    with pytest.raises(ValueError, match='2-D'):
        average_precision(scores[0], targets[0])
    with pytest.raises(ValueError, match='dim'):
        average_precision(scores, targets, dim=2)
    nan_scores = scores.copy()
    nan_scores[3, 2] = np.nan
    with pytest.raises(ValueError, match='1 NaN'):
        mean_ap(nan_scores, targets)
    with pytest.raises(ValueError, match="way must be one of.*'classes'"):
        mean_ap(scores, targets, way='classes')
    for way in ('class', 'sample'):
        with pytest.raises(ValueError, match=f'mAP@{way} is undefined'):
            mean_ap(scores, np.where(targets > 0, -1, targets), way=way)
