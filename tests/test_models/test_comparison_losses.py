"""Comparison losses (eq. 18, 19 weighted, 20, focal, ASL) against float64
references written from the equations, element by element, with ignored
labels (target < 0)."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.dataset import BaseDataset, ConcatDataset
from mmengine.logging import MMLogger
from mmpretrain.registry import HOOKS, MODELS

import mmtwoway  # noqa: F401  (registers everything)
from mmtwoway.engine.hooks import count_labels
from mmtwoway.models.losses import (FrequencyWeightedBCELoss,
                                    IgnoreLabelLoss, MultiSimilarityLoss,
                                    NormalizedSoftmaxLoss, frequency_weights)

# ---------------------------------------------------------------- fixtures


def make_batch(n=8, c=6, seed=0, ignore=True, scale=3.0):
    """Float64 logits (leaf) and 1/0/-1 targets with every row labelled."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale)
    y = (torch.rand(n, c, generator=g) < 0.35).double()
    y[:, 0] = torch.where(y[:, 1:].sum(1) == 0, 1., y[:, 0])  # a positive
    if ignore:
        y[torch.rand(n, c, generator=g) < 0.2] = -1.
    y[-1] = 0.  # a row without positives (left out of sample-wise means)
    y[-1, -1] = -1.
    return x.requires_grad_(), y


def grads(fn, x):
    """Value and gradient of the scalar fn(x) at a fresh copy of x."""
    x = x.detach().clone().requires_grad_()
    value = fn(x)
    (grad, ) = torch.autograd.grad(value, x)
    return value.detach(), grad


def assert_matches(ours, ref, x, atol=1e-9):
    v1, g1 = grads(ours, x)
    v2, g2 = grads(ref, x)
    assert torch.allclose(v1, v2, atol=atol, rtol=1e-9), (v1, v2)
    assert torch.allclose(g1, g2, atol=atol, rtol=1e-7), (g1 - g2).abs().max()


def lse(values):
    """log sum exp of a list of 0-d tensors, written out."""
    m = max(v.item() for v in values)
    return m + torch.log(sum(torch.exp(v - m) for v in values))


def ref_mean(values):
    kept = [v for v in values if v is not None]
    return (torch.stack(kept).mean()
            if kept else torch.zeros((), dtype=torch.float64))


def slices(X, Y, dim):
    """Rows (dim=-1) or columns (dim=-2) as lists of (logit, label)."""
    m, c = Y.shape
    if dim == -1:
        return [[(X[i, j], Y[i, j].item()) for j in range(c)]
                for i in range(m)]
    return [[(X[i, j], Y[i, j].item()) for i in range(m)] for j in range(c)]


def by_ways(one, X, Y, ways):
    out = torch.zeros((), dtype=torch.float64)
    if ways in ('both', 'sample'):
        out = out + ref_mean([one(s) for s in slices(X, Y, -1)])
    if ways in ('both', 'class'):
        out = out + ref_mean([one(s) for s in slices(X, Y, -2)])
    return out


# ----------------------------------------------------- softmax, eq. 18


def ref_softmax_slice(pairs):
    """-sum_c y~_c log softmax(x)_c over the labelled entries; None w/o pos."""
    labelled = [(x, y) for x, y in pairs if y >= 0]
    pos = [x for x, y in labelled if y > 0]
    if not pos:
        return None
    log_z = lse([x for x, _ in labelled])
    return -sum((x - log_z) / len(pos) for x in pos)


@pytest.mark.parametrize('ways', ['sample', 'class', 'both'])
def test_softmax_matches_reference(ways):
    x, y = make_batch()
    loss = NormalizedSoftmaxLoss(ways=ways)
    assert_matches(lambda v: loss(v, y),
                   lambda v: by_ways(ref_softmax_slice, v, y, ways), x)


def test_softmax_single_label_is_cross_entropy():
    """One positive per row: eq. 18 is the softmax cross-entropy (eq. 1)."""
    x = torch.randn(5, 7, dtype=torch.float64)
    labels = torch.tensor([0, 3, 6, 2, 2])
    y = torch.nn.functional.one_hot(labels, 7).double()
    ours = NormalizedSoftmaxLoss()(x, y)
    assert torch.allclose(ours, torch.nn.functional.cross_entropy(x, labels))


def test_softmax_buckets_and_ignore():
    x, y = make_batch(n=8)
    loss = NormalizedSoftmaxLoss(ways='class', bucket_size=4)
    per_bucket = loss(x, y, reduction_override='none')
    halves = [
        by_ways(ref_softmax_slice, x[:4], y[:4], 'class'),
        by_ways(ref_softmax_slice, x[4:], y[4:], 'class')
    ]
    assert torch.allclose(per_bucket, torch.stack(halves))
    # Ignored entries: neither value nor gradient depends on their logits.
    v1, g1 = grads(lambda v: NormalizedSoftmaxLoss(ways='both')(v, y), x)
    x2 = x.detach().clone()
    x2[y < 0] += 50.
    v2, _ = grads(lambda v: NormalizedSoftmaxLoss(ways='both')(v, y), x2)
    assert torch.allclose(v1, v2)
    assert (g1[y < 0] == 0).all()


def test_softmax_no_positive_is_zero_not_nan():
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.zeros(4, 3)
    y[0, 0] = -1
    value = NormalizedSoftmaxLoss(ways='both')(x, y)
    value.backward()
    assert value.item() == 0 and torch.isfinite(x.grad).all()


# ---------------------------------------------- multi-similarity, eq. 20


def ref_ms_slice(pairs, tp, tn):
    """softplus(Tp lse(-x_p/Tp)) + softplus(Tn lse(x_n/Tn)) from eq. 20/21."""
    pos = [x for x, y in pairs if y > 0]
    neg = [x for x, y in pairs if y == 0]
    if not pos and not neg:
        return None
    out = torch.zeros((), dtype=torch.float64)
    if pos:
        out = out + torch.log1p(torch.exp(tp * lse([-p / tp for p in pos])))
    if neg:
        out = out + torch.log1p(torch.exp(tn * lse([n / tn for n in neg])))
    return out


def test_multi_similarity_is_eq20_at_unit_temperature():
    x, y = make_batch(ignore=False)
    row = slices(x.detach(), y, -1)[0]
    pos = [v for v, t in row if t > 0]
    neg = [v for v, t in row if t == 0]
    eq20 = (torch.log(1 + sum(torch.exp(-p) for p in pos)) +
            torch.log(1 + sum(torch.exp(n) for n in neg)))
    ours = MultiSimilarityLoss(tp=1.)(x[:1].detach(), y[:1])
    assert torch.allclose(ours, eq20)


@pytest.mark.parametrize('tp,ways', [(1., 'sample'), (2., 'sample'),
                                     (4., 'sample'), (4., 'both')])
def test_multi_similarity_matches_reference(tp, ways):
    x, y = make_batch(seed=1)
    loss = MultiSimilarityLoss(tp=tp, ways=ways)
    assert_matches(lambda v: loss(v, y),
                   lambda v: by_ways(lambda s: ref_ms_slice(s, tp, 1.), v, y,
                                     ways), x)


def test_multi_similarity_hard_minimum():
    """tp=0: the positive term is softplus(-min_p x_p)."""
    x, y = make_batch(seed=2, ignore=False)
    x = x.detach()
    ref = []
    for row, lab in zip(x, y):
        pos, neg = row[lab > 0], row[lab == 0]
        v = torch.log1p(torch.exp(torch.logsumexp(neg, 0))) if len(neg) else 0
        if len(pos):
            v = v + torch.log1p(torch.exp(-pos.min()))
        ref.append(v)
    ours = MultiSimilarityLoss(tp=0.)(x, y)
    assert torch.allclose(ours, torch.stack(ref).mean())


# ------------------------------------------------------ focal / ASL


def ref_focal(X, Y, gamma=2., alpha=0.25, n=None):
    """Lin et al.: -alpha_t (1 - p_t)^gamma log p_t, labelled entries."""
    total = torch.zeros((), dtype=torch.float64)
    for x, y in ((X[i, j], Y[i, j].item()) for i in range(X.shape[0])
                 for j in range(X.shape[1])):
        if y < 0:
            continue
        p = 1 / (1 + torch.exp(-x))
        p_t, a_t = (p, alpha) if y > 0 else (1 - p, 1 - alpha)
        total = total - a_t * (1 - p_t)**gamma * torch.log(p_t)
    return total / (n or X.shape[0])


def ref_asl(X, Y, gamma_pos=0., gamma_neg=4., clip=0.05):
    """Ben-Baruch et al.: L+ = (1-p)^g+ log p, L- = p_m^g- log(1 - p_m)."""
    total = torch.zeros((), dtype=torch.float64)
    for x, y in ((X[i, j], Y[i, j].item()) for i in range(X.shape[0])
                 for j in range(X.shape[1])):
        if y < 0:
            continue
        p = 1 / (1 + torch.exp(-x))
        if y > 0:
            total = total - (1 - p)**gamma_pos * torch.log(p)
        else:
            p_m = torch.clamp(p - clip, min=0)
            total = total - p_m**gamma_neg * torch.log(1 - p_m)
    return total / X.shape[0]


FOCAL = dict(type='IgnoreLabelLoss', loss=dict(type='FocalLoss', gamma=2.0))
ASL = dict(
    type='IgnoreLabelLoss',
    loss=dict(
        type='AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05))


def test_focal_matches_reference_and_ignores():
    x, y = make_batch(scale=2.)
    loss = MODELS.build(FOCAL)
    # float32 inside (like training); compare at float32 precision.
    v1, g1 = grads(lambda v: loss(v, y, avg_factor=x.shape[0]), x)
    v2, g2 = grads(lambda v: ref_focal(v, y), x)
    assert torch.allclose(v1.double(), v2, rtol=1e-5)
    assert torch.allclose(g1.double(), g2, atol=1e-6)
    assert (g1[y < 0] == 0).all()
    # mmpretrain's own FocalLoss reads -1 as a label: the wrapper matters.
    raw = MODELS.build(FOCAL['loss'])(x.detach().float(), y.float(),
                                      avg_factor=x.shape[0])
    assert not torch.allclose(raw.double(), v2, rtol=1e-3)


def test_asl_matches_reference_and_ignores():
    x, y = make_batch(scale=2., seed=3)
    loss = MODELS.build(ASL)
    v1, g1 = grads(lambda v: loss(v, y, avg_factor=x.shape[0]), x)
    v2, g2 = grads(lambda v: ref_asl(v, y), x)
    assert torch.allclose(v1.double(), v2, rtol=1e-5)
    assert torch.allclose(g1.double(), g2, atol=1e-6)
    assert (g1[y < 0] == 0).all()


def ref_asl_grad(X, Y, detached, gamma_pos=0., gamma_neg=4., clip=0.05):
    """d(ASL)/dx written out per entry (float64), not through autograd.

    With p = s(x), p_m = max(p - m, 0) and the focusing weight w:
    positive: w = (1-p)^g+, d(-log p)/dx = -(1 - p);
    negative: w = p_m^g-, d(-log(1 - p_m))/dx = p (1-p) / (1 - p_m) if
    p > m else 0. Official ASL (detached): w times that. mmpretrain's
    (weight in the graph) adds (dw/dx) * loss.
    """
    n = X.shape[0]
    grad = torch.zeros_like(X)
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            y = Y[i, j].item()
            if y < 0:
                continue
            p = 1 / (1 + torch.exp(-X[i, j]))
            if y > 0:
                w = (1 - p)**gamma_pos
                g = -w * (1 - p)
                if not detached and gamma_pos > 0:
                    dw = -gamma_pos * (1 - p)**(gamma_pos - 1) * p * (1 - p)
                    g = g + dw * -torch.log(p)
            else:
                if p <= clip:
                    continue  # p_m = 0: no loss, no gradient
                p_m = p - clip
                w = p_m**gamma_neg
                g = w * p * (1 - p) / (1 - p_m)
                if not detached:
                    dw = gamma_neg * p_m**(gamma_neg - 1) * p * (1 - p)
                    g = g + dw * -torch.log(1 - p_m)
            grad[i, j] = g / n
    return grad


@pytest.mark.parametrize('detached', [True, False])
def test_official_asl_both_gradients_against_float64(detached):
    x, y = make_batch(scale=2., seed=5)
    loss = MODELS.build(dict(type='OfficialAsymmetricLoss', gamma_pos=0.0,
                             gamma_neg=4.0, clip=0.05,
                             detach_focusing_weight=detached))
    value, grad = grads(lambda v: loss(v, y, avg_factor=x.shape[0]), x)
    # The value does not depend on where the gradient flows.
    assert torch.allclose(value.double(), ref_asl(x.detach(), y), rtol=1e-5)
    want = ref_asl_grad(x.detach(), y, detached)
    assert torch.allclose(grad.double(), want, atol=1e-6), \
        (grad.double() - want).abs().max()
    assert (grad[y < 0] == 0).all()
    # The two gradients really differ (hard negatives), and only on
    # negatives with p > m when gamma+ = 0.
    other = ref_asl_grad(x.detach(), y, not detached)
    differs = (want - other).abs() > 1e-6
    assert differs.any()
    p = torch.sigmoid(x.detach())
    assert not (differs & ((y != 0) | (p <= 0.05))).any()


def test_official_asl_weight_in_the_graph_is_mmpretrains():
    x, y = make_batch(scale=2., seed=6)
    ours = MODELS.build(dict(type='OfficialAsymmetricLoss',
                             detach_focusing_weight=False))
    theirs = MODELS.build(ASL)
    v1, g1 = grads(lambda v: ours(v, y, avg_factor=x.shape[0]), x)
    v2, g2 = grads(lambda v: theirs(v, y, avg_factor=x.shape[0]), x)
    assert torch.allclose(v1, v2, rtol=1e-6)
    assert torch.allclose(g1, g2, atol=1e-7)
    # gamma+ > 0 and no clip: the positives' weight matters too.
    x, y = make_batch(scale=2., seed=7)
    for detached in (True, False):
        loss = MODELS.build(dict(type='OfficialAsymmetricLoss', gamma_pos=1.,
                                 gamma_neg=2., clip=0.,
                                 detach_focusing_weight=detached))
        _, g = grads(lambda v: loss(v, y, avg_factor=x.shape[0]), x)
        want = ref_asl_grad(x.detach(), y, detached, 1., 2., 0.)
        assert torch.allclose(g.double(), want, atol=1e-6)
    with pytest.raises(ValueError, match='clip'):
        MODELS.build(dict(type='OfficialAsymmetricLoss', clip=1.5))


def test_ignore_wrapper_reductions_and_errors():
    x, y = make_batch()
    loss = MODELS.build(FOCAL)
    element = loss(x, y, reduction_override='none')
    assert element.shape == x.shape and (element[y < 0] == 0).all()
    labelled = (y >= 0).sum()
    assert torch.allclose(loss(x, y), element.sum() / labelled)
    assert torch.allclose(
        loss(x, y, reduction_override='sum'), element.sum())
    with pytest.raises(ValueError, match='same shape'):
        loss(x, y[:, :3])
    with pytest.raises(ValueError, match='element-wise'):
        IgnoreLabelLoss(
            loss=dict(type='CrossEntropyLoss', use_sigmoid=False))(x, y)


# ------------------------------------------- frequency-weighted BCE


def test_frequency_weights_formula():
    w_pos, w_neg = frequency_weights([1, 3, 0], [3, 1, 4])
    # r = 1/4, 3/4, 0: w+ = 1/(2r), w- = 1/(2(1-r)); absent side -> 0.
    assert torch.allclose(w_pos, torch.tensor([2., 2 / 3, 0.],
                                              dtype=torch.float64))
    assert torch.allclose(w_neg, torch.tensor([2 / 3, 2., 0.5],
                                              dtype=torch.float64))
    with pytest.raises(ValueError):
        frequency_weights([1, 2], [1])


def test_frequency_weight_alternatives():
    pos, neg = [1, 3, 0, 2], [3, 1, 4, 0]
    # PyTorch's pos_weight recipe: w+ = N / P, w- = 1 (absent side -> 0).
    w_pos, w_neg = frequency_weights(pos, neg, 'pos_weight')
    assert w_pos.tolist() == [3., 1 / 3, 0., 0.]
    assert w_neg.tolist() == [1., 1., 1., 0.]
    # power tempers the formula: 0.5 square-root, 0 unweighted.
    b_pos, b_neg = frequency_weights(pos, neg)
    s_pos, s_neg = frequency_weights(pos, neg, power=0.5)
    assert torch.allclose(s_pos, b_pos.sqrt())
    assert torch.allclose(s_neg, b_neg.sqrt())
    u_pos, u_neg = frequency_weights(pos, neg, power=0.)
    assert u_pos.tolist() == [1., 1., 0., 1.]
    assert u_neg.tolist() == [1., 1., 1., 0.]
    with pytest.raises(ValueError, match="'balanced', 'pos_weight'"):
        frequency_weights(pos, neg, 'inverse')
    with pytest.raises(ValueError, match='power'):
        FrequencyWeightedBCELoss(formula='balanced', power=-1.)
    # The loss and its config take the choice through to the weights.
    loss = MODELS.build(dict(type='FrequencyWeightedBCELoss',
                             formula='pos_weight', power=0.5))
    loss.set_label_counts([1, 3], [3, 1])
    assert torch.allclose(loss.pos_weight, torch.tensor([3**0.5, 3**-0.5]))
    assert torch.allclose(loss.neg_weight, torch.ones(2))
    x, y = make_batch(n=4, c=2, seed=8, ignore=False)
    element = loss(x, y, reduction_override='none')
    t = y.clamp(min=0)
    want = (loss.pos_weight * t * torch.nn.functional.softplus(-x) +
            loss.neg_weight * (1 - t) * torch.nn.functional.softplus(x))
    want = want.masked_fill(y < 0, 0.)  # make_batch's one ignored entry
    assert torch.allclose(element.double(), want.double(), atol=1e-6)


def test_focal_alpha_alternatives_match_the_reference():
    """alpha = 0.25 ([18], the configs) and 0.5 (both sides alike)."""
    x, y = make_batch(scale=2., seed=9)
    for alpha in (0.25, 0.5, 0.75):
        loss = MODELS.build(dict(type='IgnoreLabelLoss',
                                 loss=dict(type='FocalLoss', gamma=2.0,
                                           alpha=alpha)))
        v1, g1 = grads(lambda v: loss(v, y, avg_factor=x.shape[0]), x)
        v2, g2 = grads(lambda v: ref_focal(v, y, alpha=alpha), x)
        assert torch.allclose(v1.double(), v2, rtol=1e-5), alpha
        assert torch.allclose(g1.double(), g2, atol=1e-6), alpha


def ref_weighted_bce(X, Y, pos_counts, neg_counts):
    total = torch.zeros((), dtype=torch.float64)
    for i in range(X.shape[0]):
        for c in range(X.shape[1]):
            y = Y[i, c].item()
            if y < 0:
                continue
            r = pos_counts[c] / (pos_counts[c] + neg_counts[c])
            p = 1 / (1 + torch.exp(-X[i, c]))
            if y > 0:
                total = total - torch.log(p) / (2 * r)
            else:
                total = total - torch.log(1 - p) / (2 * (1 - r))
    return total / X.shape[0]


def test_weighted_bce_matches_reference():
    x, y = make_batch(scale=2., seed=4)
    pos_counts, neg_counts = [5, 1, 2, 9, 3, 4], [95, 9, 8, 1, 7, 6]
    loss = FrequencyWeightedBCELoss(pos_counts, neg_counts)
    v1, g1 = grads(lambda v: loss(v, y, avg_factor=x.shape[0]), x)
    v2, g2 = grads(lambda v: ref_weighted_bce(v, y, pos_counts, neg_counts), x)
    assert torch.allclose(v1.double(), v2, rtol=1e-5)
    assert torch.allclose(g1.double(), g2, atol=1e-6)
    assert (g1[y < 0] == 0).all()


def test_weighted_bce_without_counts_says_how_to_get_them():
    loss = FrequencyWeightedBCELoss()
    with pytest.raises(RuntimeError, match='ClassFrequencyHook'):
        loss(torch.zeros(2, 3), torch.zeros(2, 3))
    loss.set_label_counts([1, 1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match='C = 3'):
        loss(torch.zeros(2, 4), torch.zeros(2, 4))
    # Not saved in checkpoints: the hook recomputes them from the data.
    assert 'pos_weight' not in loss.state_dict()


def test_weighted_bce_weights_live_on_the_model_device(op_recorder):
    # The hook sets the counts after the model went to the GPU: the
    # weights land on the module's device, and no step copies them. The
    # 'meta' device stands in for the GPU (tensors without data).
    loss = FrequencyWeightedBCELoss().to('meta')
    loss.set_label_counts(torch.tensor([1, 2, 3]), torch.tensor([3, 2, 1]))
    assert loss.pos_weight.device.type == 'meta'
    assert loss.neg_weight.device.type == 'meta'
    x = torch.randn(2, 3, device='meta')
    y = torch.empty(2, 3, device='meta')
    with op_recorder() as rec:
        value = loss(x, y, avg_factor=2)
    assert value.device.type == 'meta'
    assert rec.ops and all(devices == {'meta'}
                           for _, devices in rec.calls if devices)


class _Labels(BaseDataset):
    """A real mmengine dataset whose samples are given label records."""

    def __init__(self, records, classes):
        self._records = records
        super().__init__(metainfo=dict(classes=classes), serialize_data=True)

    def load_data_list(self):
        return [dict(img_path=f'{i}.jpg', **r)
                for i, r in enumerate(self._records)]


def test_count_labels_gt_label_gt_score_and_concat():
    classes = ('a', 'b', 'c')
    first = _Labels([dict(gt_label=[0, 2]), dict(gt_label=[1])], classes)
    second = _Labels([dict(gt_score=[1., -1., 0.]),
                      dict(gt_score=[-1., -1., 1.])], classes)
    pos, neg = count_labels(ConcatDataset([first, second]), 3, chunk=3)
    assert pos.tolist() == [2, 1, 2]
    assert neg.tolist() == [1, 1, 2]


def test_class_frequency_hook_feeds_the_loss():
    """The hook counts runner.train_dataloader.dataset and sets the weights
    (tests/test_configs runs it inside a real Runner)."""
    classes = ('a', 'b')
    dataset = _Labels([dict(gt_label=[0]), dict(gt_label=[0, 1]),
                       dict(gt_label=[0]), dict(gt_label=[])], classes)
    loss = FrequencyWeightedBCELoss()
    model = torch.nn.ModuleDict(
        dict(head=torch.nn.ModuleDict(dict(loss_module=loss))))
    runner = SimpleNamespace(
        model=model,
        train_dataloader=SimpleNamespace(dataset=dataset),
        logger=MMLogger.get_current_instance())
    hook = HOOKS.build(dict(type='ClassFrequencyHook'))
    hook.before_train(runner)
    expected = frequency_weights([3, 1], [1, 3])
    assert torch.allclose(loss.pos_weight.double(), expected[0])
    assert torch.allclose(loss.neg_weight.double(), expected[1])
    runner.model = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match='no module'):
        hook.before_train(runner)


def test_losses_build_from_config_and_take_the_head_call():
    """Every registered loss takes mmpretrain's head call signature."""
    x, y = make_batch()
    for cfg in (dict(type='NormalizedSoftmaxLoss'),
                dict(type='MultiSimilarityLoss', tp=4.0), FOCAL, ASL,
                dict(type='FrequencyWeightedBCELoss', pos_counts=[1] * 6,
                     neg_counts=[7] * 6)):
        value = MODELS.build(cfg)(x, y, weight=None, avg_factor=8,
                                  reduction_override=None)
        assert value.dim() == 0 and math.isfinite(value.item())
