"""CP, CR, CF1, OP, OR, OF1: the functional core against sklearn, and the
``MultiLabelF1`` metric beside ``MultiLabelMAP`` in an mmengine Evaluator."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample
from sklearn.metrics import precision_recall_fscore_support

import mmtwoway  # noqa: F401
from mmtwoway.evaluation import MultiLabelF1, label_set_scores
from mmtwoway.evaluation.decision import (save_calibration, threshold_labels,
                                          topk_labels)

NUM_CLASSES = 6


def random_problem(n, seed):
    """Decisions and targets with ignored entries, a class without
    positives (4) and a class never predicted (5)."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, NUM_CLASSES)) < 0.35).astype(np.int64)
    targets[rng.random((n, NUM_CLASSES)) < 0.2] = -1
    targets[:, 4] = np.where(targets[:, 4] > 0, 0, targets[:, 4])
    decided = rng.random((n, NUM_CLASSES)) < 0.4
    decided[:, 5] = False
    return decided, targets


def sklearn_reference(decided, targets):
    """Macro over the classes with positives and micro over all entries,
    both on the non-ignored entries only, with sklearn."""
    per_class = []
    for c in range(NUM_CLASSES):
        keep = targets[:, c] >= 0
        t, d = targets[keep, c] > 0, decided[keep, c]
        if t.any():
            p, r, f, _ = precision_recall_fscore_support(
                t, d, average='binary', zero_division=0)
            per_class.append((p, r, f))
    cp, cr, mean_f1 = np.mean(per_class, axis=0)
    keep = targets >= 0
    op, orr, of1, _ = precision_recall_fscore_support(
        targets[keep] > 0, decided[keep], average='binary', zero_division=0)
    return dict(CP=cp, CR=cr, mean_f1=mean_f1, OP=op, OR=orr, OF1=of1)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_label_set_scores_equal_sklearn(seed):
    decided, targets = random_problem(200, seed)
    ref = sklearn_reference(decided, targets)
    got = label_set_scores(decided, targets)
    for key in ('CP', 'CR', 'OP', 'OR', 'OF1'):
        assert got.overall[key] == pytest.approx(100 * ref[key], abs=1e-10)
    # CF1 is the harmonic mean of CP and CR, not the mean per-class F1
    cp, cr = ref['CP'], ref['CR']
    assert got.overall['CF1'] == pytest.approx(
        100 * 2 * cp * cr / (cp + cr), abs=1e-10)
    assert got.overall['CF1'] != pytest.approx(100 * ref['mean_f1'])
    has_pos = got.num_positives > 0
    assert got.f1[has_pos].mean().item() == pytest.approx(ref['mean_f1'])
    # the class without positives has no recall / F1, the never-predicted
    # one has precision 0
    assert got.recall[4].isnan() and got.f1[4].isnan()
    assert got.precision[5] == 0 and got.num_predicted[5] == 0


def test_decisions_at_ignored_entries_do_not_count():
    decided, targets = random_problem(50, 3)
    flipped = decided.copy()
    flipped[targets < 0] = ~flipped[targets < 0]
    assert label_set_scores(decided, targets).overall == label_set_scores(
        flipped, targets).overall


def test_label_set_scores_errors():
    with pytest.raises(ValueError, match='shape'):
        label_set_scores(np.zeros((2, 3), bool), np.zeros((2, 2)))
    with pytest.raises(ValueError, match='no entry has a positive'):
        label_set_scores(np.ones((2, 3), bool), -np.ones((2, 3)))


# -------------------------------------------------------------- the metric


def make_samples(n, seed, **meta):
    """Data samples with logits, a decision (pred_label: top-2) and
    gt_score with ignored entries; also the matrices behind them."""
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.standard_normal((n, NUM_CLASSES))).float()
    _, targets = random_problem(n, seed)
    targets[:, 0] = 1  # every sample has a positive
    targets = torch.from_numpy(targets)
    decided = topk_labels(scores, 2)
    samples = []
    for i in range(n):
        sample = DataSample(metainfo=dict(sample_idx=i, **meta))
        sample.set_pred_score(scores[i]).set_pred_label(
            torch.where(decided[i])[0]).set_gt_score(targets[i].float())
        samples.append(sample.to_dict())
    return samples, scores, targets


def evaluate(metric, samples, batch=7):
    for start in range(0, len(samples), batch):
        metric.process(None, samples[start:start + batch])
    return metric.evaluate(len(samples))


def prefixed(overall):
    return {f'multi-label/{k}': v for k, v in overall.items()}


def test_metric_uses_the_heads_decision_by_default():
    samples, scores, targets = make_samples(40, 0)
    expected = label_set_scores(topk_labels(scores, 2), targets).overall
    assert evaluate(MultiLabelF1(), samples) == pytest.approx(
        prefixed(expected))
    # the same as deciding top-2 itself
    assert evaluate(MultiLabelF1(topk=2), samples) == pytest.approx(
        prefixed(expected))


def test_metric_with_its_own_decision(tmp_path):
    samples, scores, targets = make_samples(40, 1)
    thr = [0.1, -0.2, 0.3, 0., 1., 0.5]
    expected = label_set_scores(threshold_labels(scores, thr), targets)
    assert evaluate(MultiLabelF1(thr=thr), samples) == pytest.approx(
        prefixed(expected.overall))
    path = str(tmp_path / 'cal.json')
    names = [f'c{i}' for i in range(NUM_CLASSES)]
    save_calibration(path, names, thr, 0.3)
    metric = METRICS.build(dict(type='MultiLabelF1', calibration=path))
    metric.dataset_meta = dict(classes=names)
    assert evaluate(metric, samples) == pytest.approx(
        prefixed(expected.overall))
    top = scores.max(1, keepdim=True).values
    relative = label_set_scores(scores >= top - 0.3, targets).overall
    assert evaluate(MultiLabelF1(delta=0.3), samples) == pytest.approx(
        prefixed(relative))


def test_metric_beside_mAP_in_one_evaluator():
    samples, scores, targets = make_samples(30, 2)
    # as a config's val_evaluator list, in mmpretrain's scope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        evaluator = Evaluator([
            dict(type='MultiLabelMAP'),
            dict(type='MultiLabelF1', topk=1)
        ])
    evaluator.process([DataSample(**s) for s in samples])
    result = evaluator.evaluate(len(samples))
    assert set(result) == {
        'multi-label/mAP@class', 'multi-label/mAP@sample', 'multi-label/CP',
        'multi-label/CR', 'multi-label/CF1', 'multi-label/OP',
        'multi-label/OR', 'multi-label/OF1'
    }
    expected = label_set_scores(topk_labels(scores, 1), targets).overall
    assert {k: result[k]
            for k in prefixed(expected)} == pytest.approx(prefixed(expected))


def test_duplicates_are_counted_once():
    samples, _, _ = make_samples(20, 4)
    expected = evaluate(MultiLabelF1(), samples)
    # a padded copy (DefaultSampler) with other predictions is dropped
    repeated = samples + [
        dict(s, pred_label=torch.arange(NUM_CLASSES)) for s in samples[:5]
    ]
    assert evaluate(MultiLabelF1(), repeated) == pytest.approx(expected)


def test_class_list_checks_and_errors(tmp_path):
    names = [f'c{i}' for i in range(NUM_CLASSES)]
    path = str(tmp_path / 'cal.json')
    save_calibration(path, names, [0.] * NUM_CLASSES, 0.1)
    samples, _, _ = make_samples(5, 5)
    metric = MultiLabelF1(calibration=path)
    metric.dataset_meta = dict(classes=names[::-1])
    with pytest.raises(ValueError, match='another class list'):
        metric.process(None, samples)
    # a head calibrated for other classes than the dataset's
    stamped, _, _ = make_samples(5, 5, decision_classes=tuple(names[::-1]))
    metric = MultiLabelF1()
    metric.dataset_meta = dict(classes=names)
    with pytest.raises(ValueError, match='model.head.calibration'):
        metric.process(None, stamped)
    with pytest.raises(ValueError, match='at most one'):
        MultiLabelF1(topk=1, thr=0.)
    with pytest.raises(ValueError, match='difficult_as'):
        MultiLabelF1(difficult_as='hard')
    no_labels = [{k: v for k, v in s.items() if k != 'pred_label'}
                 for s in samples]
    with pytest.raises(ValueError, match='pred_label'):
        MultiLabelF1().process(None, no_labels)
