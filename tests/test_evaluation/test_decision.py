"""Decision rules, exact calibration, calibration files and the head."""
import json
import math

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from sklearn.metrics import f1_score

import mmtwoway  # noqa: F401
from mmtwoway.evaluation import calibrate_delta, calibrate_thresholds
from mmtwoway.evaluation.decision import (Decision, label_set_scores,
                                          load_calibration, relative_labels,
                                          save_calibration, score_gaps,
                                          threshold_labels, topk_labels)


def test_rules_on_hand_values():
    scores = torch.tensor([[3., 1., 2.9, -5.], [0., 0.5, 0.2, 0.1]])
    assert topk_labels(scores, 2).tolist() == [[1, 0, 1, 0], [0, 1, 1, 0]]
    assert topk_labels(scores, 9).all()  # more than C: every class
    assert threshold_labels(scores, 0.2).tolist() == [[1, 1, 1, 0],
                                                      [0, 1, 1, 0]]
    per_class = [10., 0.5, math.inf, -10.]
    assert threshold_labels(scores, per_class).tolist() == [[0, 1, 0, 1],
                                                            [0, 1, 0, 1]]
    # within 0.15 of the top: 3 and 2.9; 0.5 alone (0.2 is 0.3 below)
    assert relative_labels(scores, 0.15).tolist() == [[1, 0, 1, 0],
                                                      [0, 1, 0, 0]]
    assert relative_labels(scores, 0.).sum(1).tolist() == [1, 1]


def test_threshold_between_adjacent_float32_scores():
    # Halfway between two neighbouring float32 values: a float32 copy of
    # the threshold would round onto one of them.
    low = np.float32(1.0)
    high = np.nextafter(low, np.float32(2))
    scores = torch.tensor([[high], [low]])
    targets = torch.tensor([[1], [0]])
    fitted = calibrate_thresholds(scores, targets)
    assert low < fitted.thresholds[0] < high
    assert threshold_labels(scores, fitted.thresholds).flatten().tolist() == [
        True, False
    ]


def test_calibration_fixture_with_known_optimum():
    nan = float('nan')
    scores = torch.tensor([
        [0.9, 5.0, 0.3, 1.0],
        [0.8, 4.0, 0.2, 2.0],
        [0.7, 4.0, nan, 3.0],
        [0.1, 1.0, 0.1, 4.0],
        [0.05, 0.0, 0.0, 5.0],
    ])
    targets = torch.tensor([
        [1, 0, 0, 1],
        [0, 1, 0, 1],
        [1, 1, -1, 1],
        [0, -1, 0, 1],
        [0, 1, 0, 1],
    ])
    fitted = calibrate_thresholds(scores, targets)
    # Class 0, positives 0.9 and 0.7: cutting at 0.9 gives F1 2/3, at 0.7
    # (0.8 a false positive) 4/5; halfway down to the next score 0.1.
    # Class 1, positives 4 (twice, tied with nothing else) and 0; the
    # ignored 1.0 does not count: at 4 TP 2 FP 0 -> 4/5; at 0 TP 3 FP 1 ->
    # 6/7, the best, and no lower score: half the gap to the next higher
    # score 4 below it, -2 (a threshold on a score would flip with the last
    # bit of another runtime's logits, e.g. onnxruntime's).
    # Class 2: no positive (the ignored NaN is fine): never predicted.
    # Class 3: all positive: everything, halfway below the lowest score 1
    # by the gap to 2.
    np.testing.assert_allclose(fitted.thresholds.numpy(),
                               [0.4, -2., math.inf, 0.5], rtol=1e-6)
    finite = scores[~scores.isnan()]
    assert not torch.isin(fitted.thresholds.float(), finite).any()
    np.testing.assert_allclose(fitted.f1.numpy(), [0.8, 6 / 7, nan, 1.])
    measured = label_set_scores(
        threshold_labels(scores.nan_to_num(), fitted.thresholds), targets)
    np.testing.assert_allclose(measured.f1.numpy(), fitted.f1.numpy())


def test_ties_are_taken_whole_and_the_highest_best_threshold_wins():
    # A positive tied with a negative: both are in or both out. At 2.0:
    # TP 1 FP 1 -> F1 2/3; at 1.0: TP 2 FP 1 -> 4/5.
    scores = torch.tensor([[2.], [2.], [1.], [0.]])
    targets = torch.tensor([[1], [0], [1], [0]])
    fitted = calibrate_thresholds(scores, targets)
    assert fitted.f1.item() == pytest.approx(0.8)
    assert fitted.thresholds.item() == pytest.approx(0.5)
    # Equal F1 at 3 (TP 1 FP 0 of P 2: 2/3) and at 1 (TP 2 FP 2: 2/3):
    # the higher threshold is kept.
    scores = torch.tensor([[3.], [2.], [2.], [1.]])
    targets = torch.tensor([[1], [0], [0], [1]])
    fitted = calibrate_thresholds(scores, targets)
    assert fitted.f1.item() == pytest.approx(2 / 3)
    assert fitted.thresholds.item() == pytest.approx(2.5)


def random_problem(n, c, seed):
    rng = np.random.default_rng(seed)
    # One decimal: many ties inside every class.
    scores = np.round(rng.standard_normal((n, c)), 1).astype(np.float32)
    targets = (rng.random((n, c)) < 0.3).astype(np.int64)
    targets[rng.random((n, c)) < 0.15] = -1
    targets[0] = 1  # every class has a positive
    return scores, targets


def best_f1_by_brute_force(scores, targets):
    """The best F1 of every cut ``score >= t`` over the distinct scores,
    counted plainly (ignored entries removed first)."""
    keep = targets >= 0
    s, t = scores[keep], targets[keep] > 0
    decided = s[None, :] >= np.unique(s)[:, None]  # one row per cut
    tp = (decided & t).sum(1)
    return (2 * tp / (decided.sum(1) + t.sum())).max()


@pytest.mark.parametrize('seed', [0, 1])
def test_calibrated_thresholds_are_optimal(seed):
    scores, targets = random_problem(120, 6, seed)
    fitted = calibrate_thresholds(scores, targets)
    decided = threshold_labels(scores, fitted.thresholds).numpy()
    for c in range(scores.shape[1]):
        best = best_f1_by_brute_force(scores[:, c], targets[:, c])
        assert fitted.f1[c].item() == pytest.approx(best, abs=1e-12)
        keep = targets[:, c] >= 0
        reached = f1_score(targets[keep, c] > 0, decided[keep, c])
        assert reached == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize('seed', [0, 1])
def test_calibrated_delta_maximises_overall_f1(seed):
    scores, targets = random_problem(80, 5, seed + 10)
    delta, of1 = calibrate_delta(scores, targets)
    gaps = score_gaps(scores).numpy()
    # "within the gap" is the cut -gap >= -cut, over all entries at once
    best = best_f1_by_brute_force(-gaps.ravel(), targets.ravel())
    assert of1 == pytest.approx(best, abs=1e-12)
    decided = relative_labels(scores, delta).numpy()
    keep = targets >= 0
    assert f1_score(targets[keep] > 0, decided[keep]) == pytest.approx(
        best, abs=1e-12)
    assert delta >= 0


def test_delta_hand_values():
    scores = torch.tensor([[.9, .1], [.8, .2], [.7, .3], [.1, .4]])
    targets = torch.tensor([[1, 0], [0, 1], [1, -1], [0, 1]])
    # Gaps of the positives: 0, 0.6, 0, 0 (P = 4). Within 0: TP 3 of 4
    # taken -> OF1 6/8; within 0.6: TP 4 of 6 -> 8/10, the best; the next
    # larger gap is 0.8, so delta = 0.7.
    delta, of1 = calibrate_delta(scores, targets)
    assert delta == pytest.approx(0.7, abs=1e-6) and of1 == pytest.approx(0.8)


def test_rule_errors():
    scores = torch.zeros(2, 3)
    with pytest.raises(ValueError, match='k'):
        topk_labels(scores, 0)
    with pytest.raises(ValueError, match='one per class'):
        threshold_labels(scores, [0., 1.])
    with pytest.raises(ValueError, match='NaN'):
        threshold_labels(scores, [0., float('nan'), 1.])
    with pytest.raises(ValueError, match='delta'):
        relative_labels(scores, -0.1)
    with pytest.raises(ValueError, match='2-D'):
        topk_labels(torch.zeros(3), 1)
    with pytest.raises(ValueError, match='NaN'):
        calibrate_thresholds([[float('nan')], [1.]], [[1], [0]])
    with pytest.raises(ValueError, match='shape'):
        calibrate_thresholds(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match='no positive'):
        calibrate_delta(torch.zeros(2, 3), torch.zeros(2, 3))


# ---------------------------------------------------------- calibration file

NAMES = ('cat', 'dog', 'bird')


def test_calibration_file_round_trip(tmp_path):
    path = str(tmp_path / 'cal.json')
    save_calibration(path, NAMES, [0.5, math.inf, -1.], 0.25, 'thresholds',
                     dict(f1=torch.tensor([0.5, float('nan'), 1.])))
    with open(path) as f:
        raw = json.load(f)  # strict JSON: inf and NaN written as null
    assert raw['thresholds'] == [0.5, None, -1.]
    assert raw['validation']['f1'] == [0.5, None, 1.]
    decision = Decision.from_file(path, num_classes=3)
    assert decision.rule == 'thresholds' and decision.classes == NAMES
    assert decision.thresholds == (0.5, math.inf, -1.)
    assert decision(torch.tensor([[0.5, 99., -1.]])).tolist() == [[1, 0, 1]]
    assert path in decision.describe()
    relative = Decision.from_file(path, rule='relative')
    assert relative.delta == 0.25
    assert relative(torch.tensor([[1., 0.8, 0.7]])).tolist() == [[1, 1, 0]]


def test_calibration_file_errors(tmp_path):
    path = str(tmp_path / 'cal.json')
    save_calibration(path, NAMES, [0., 0., 0.], 0.1)
    with pytest.raises(ValueError, match=r'cal.json has 3 classes but the '
                       r'model has 4.*calibrate.py'):
        Decision.from_file(path, num_classes=4)
    decision = Decision.from_file(path)
    with pytest.raises(ValueError, match=r"another class list.*class 1 is "
                       r"'dog' there but 'cow' here"):
        decision.check_classes(('cat', 'cow', 'bird'), 'the dataset')
    decision.check_classes(NAMES, 'the dataset')
    with pytest.raises(FileNotFoundError, match='calibrate.py'):
        Decision.from_file(str(tmp_path / 'missing.json'))
    other = tmp_path / 'other.json'
    other.write_text('{"classes": []}')
    with pytest.raises(ValueError, match='not an mmtwoway calibration'):
        load_calibration(str(other))
    other.write_text('not json')
    with pytest.raises(ValueError, match='not valid JSON'):
        load_calibration(str(other))
    with pytest.raises(ValueError, match='rule'):
        Decision('maybe')


# ------------------------------------------------------------------ the head


def make_head(**kwargs):
    head = MODELS.build(
        dict(type='TwoWayLinearClsHead', num_classes=3, in_channels=4,
             **kwargs))
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.copy_(torch.tensor([1., 0.9, -1.]))
    return head


def test_head_reads_a_calibration_file(tmp_path):
    path = str(tmp_path / 'cal.json')
    save_calibration(path, NAMES, [2., 0.5, -3.], 0.15, 'thresholds')
    pred = make_head(calibration=path).predict((torch.randn(1, 4), ))[0]
    assert pred.pred_label.tolist() == [1, 2]
    assert pred.decision == f'per-class thresholds from {path}'
    assert pred.decision_classes == NAMES
    save_calibration(path, NAMES, [2., 0.5, -3.], 0.15, 'relative')
    pred = make_head(calibration=path).predict((torch.randn(1, 4), ))[0]
    assert pred.pred_label.tolist() == [0, 1]
    assert pred.decision.startswith('relative')
    # uncalibrated: top-k, and the samples say so
    pred = make_head(topk=1).predict((torch.randn(1, 4), ))[0]
    assert pred.pred_label.tolist() == [0]
    assert 'uncalibrated' in pred.decision
    assert 'decision_classes' not in pred


def test_head_refuses_a_file_of_another_model(tmp_path):
    path = str(tmp_path / 'cal.json')
    save_calibration(path, NAMES[:2], [0., 0.], 0.1)
    with pytest.raises(ValueError, match='has 2 classes but the model has 3'):
        make_head(calibration=path)
    with pytest.raises(ValueError, match='not both'):
        make_head(calibration=path, thr=0.)
