"""TwoWayLoss on hostile input: the non-finite rule, argument checks and a
fuzz test over random shapes, masks and magnitudes.

The rule (``mmtwoway.models.losses.bucket_loss.poison_nonfinite``): legal
input (finite logits of any magnitude, targets without NaN) gives a finite
loss and a finite gradient; a bucket with a +-inf / NaN logit or a NaN
target has a NaN loss, never a finite loss with a NaN gradient.
"""
import math

import pytest
import torch
from reference_two_way import ref_bucket

from mmtwoway.models.losses import TwoWayLoss, two_way_loss

INF, NAN = float('inf'), float('nan')
WAYS = ('both', 'sample', 'class', 'joint')


def grad_of(loss_fn, x):
    x = x.clone().requires_grad_(True)
    value = loss_fn(x)
    value.sum().backward()
    return value.detach(), x.grad


# ---------------------------------------------------------- the issue cases


def test_inf_logit_on_a_rows_only_positive_is_a_nan_loss():
    """Was: a finite loss (0.896 in the issue) with a NaN gradient."""
    x = torch.tensor([[INF, 0.2, -0.3], [0.1, 0.5, 0.2], [0.3, -1., 2.]])
    y = torch.eye(3)
    for ways in WAYS:
        loss, _ = grad_of(lambda v: TwoWayLoss(ways=ways)(v, y), x)
        assert math.isnan(loss.item()), ways


@pytest.mark.parametrize('bad', [INF, -INF, NAN])
def test_a_non_finite_logit_poisons_only_its_bucket(bad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = (torch.rand(8, 5, generator=g) < 0.4).double()
    x[5, 2] = bad  # bucket 1 of two buckets of 4
    for ways in WAYS:
        per = TwoWayLoss(ways=ways, bucket_size=4)(
            x, y, reduction_override='none')
        assert torch.isfinite(per[0]) and math.isnan(per[1].item()), ways
        torch.testing.assert_close(per[0], ref_bucket(x[:4], y[:4],
                                                      ways=ways))


def test_a_nan_target_is_a_nan_loss_even_at_an_ignored_weight():
    x, y = torch.randn(4, 3), torch.eye(4, 3)
    y[2, 1] = NAN
    assert math.isnan(TwoWayLoss()(x, y).item())
    # weight 0 means "ignored": the entry is excluded whatever its target
    w = torch.ones(4, 3)
    w[2, 1] = 0
    assert torch.isfinite(TwoWayLoss()(x, y, weight=w))


def test_legal_infinite_targets_keep_their_sign():
    """+-inf targets are positive / ignored by the rule, not errors."""
    x = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([[1., 0, 0], [0, INF, 0], [0, 0, -INF], [1, 0, 0]])
    want = torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, -1], [1, 0, 0]])
    torch.testing.assert_close(TwoWayLoss()(x, y), TwoWayLoss()(x, want))


def test_non_finite_checks_never_sync_with_the_host(op_recorder,
                                                     syncing_ops):
    x = torch.randn(8, 5)
    x[1, 1] = INF
    y = (torch.rand(8, 5) < 0.4).float()
    y[3, 3] = NAN
    x.requires_grad_(True)
    with op_recorder() as rec:
        TwoWayLoss(bucket_size=4)(x, y).backward()
    assert not [op for op in rec.ops if op in syncing_ops + ('index', )]


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(tp=NAN), ValueError, r'tp must be a finite number >= 0.0, got nan'),
    (dict(tn=INF), ValueError, r'tn must be a finite number'),
    (dict(tp=-1.), ValueError, r'tp must be a finite number >= 0.0, got -1'),
    (dict(margin=NAN), ValueError, r'margin must be a finite number'),
    (dict(tp='4'), TypeError, r"tp must be a number, got '4' \(str\)"),
    (dict(tn=None), TypeError, r'tn must be a number, got None'),
    (dict(tp=True), TypeError, r'tp must be a number, got True \(bool\)'),
    (dict(loss_weight='1'), TypeError, r'loss_weight must be a number'),
    (dict(loss_weight=INF), ValueError, r'loss_weight must be a finite'),
    (dict(bucket_size=True), ValueError, r'bucket_size must be None or a '
     'positive int'),
])
def test_arguments_that_cannot_work_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=r'TwoWayLoss: ' + match):
        TwoWayLoss(**kwargs)


def test_the_registry_reports_the_argument():
    from mmpretrain.registry import MODELS
    with pytest.raises(TypeError, match="tp must be a number, got '4'"):
        MODELS.build(dict(type='TwoWayLoss', tp='4'))


# -------------------------------------------------------------------- fuzz


def random_case(g: torch.Generator):
    """Random shape, buckets, temperatures, masks and special slices."""
    n = int(torch.randint(1, 13, (), generator=g))
    c = int(torch.randint(1, 10, (), generator=g))
    divisors = [m for m in range(1, n + 1) if n % m == 0]
    bucket = divisors[int(torch.randint(len(divisors), (), generator=g))]
    y = torch.zeros(n, c, dtype=torch.float64)
    p_pos, p_ign = torch.rand(2, generator=g).tolist()
    u = torch.rand(n, c, generator=g)
    y[u < p_pos * 0.6] = 1
    y[torch.rand(n, c, generator=g) < p_ign * 0.5] = -1
    # special rows / columns: empty (all ignored), one entry, all positive,
    # all negative
    for dim in (0, 1):
        size = y.shape[dim]
        k = int(torch.randint(size, (), generator=g))
        kind = int(torch.randint(5, (), generator=g))
        line = y.select(dim, k)
        if kind == 0:
            line.fill_(-1)
        elif kind == 1:
            line.fill_(-1)
            line[int(torch.randint(line.numel(), (), generator=g))] = 1
        elif kind == 2:
            line.fill_(1)
        elif kind == 3:
            line.fill_(0)
    scale = [1., 30., 1e4, 1e30][int(torch.randint(4, (), generator=g))]
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    options = dict(
        tp=[0., 0.5, 1., 4.][int(torch.randint(4, (), generator=g))],
        tn=[0., 0.5, 1., 2.][int(torch.randint(4, (), generator=g))],
        ways=WAYS[int(torch.randint(4, (), generator=g))],
        margin=[0., 1.][int(torch.randint(2, (), generator=g))],
        bucket_size=bucket)
    return x, y, options, scale


@pytest.mark.parametrize('seed', range(300))
def test_fuzz_legal_input_is_finite_illegal_input_is_nan(seed):
    g = torch.Generator().manual_seed(seed)
    x, y, options, scale = random_case(g)
    dtype = [torch.float64, torch.float32][seed % 2]
    if dtype == torch.float32:
        x = x.float()
    loss = TwoWayLoss(**options)
    per, grad = grad_of(
        lambda v: loss(v, y.to(v.dtype), reduction_override='none'), x)
    # legal input: finite value and gradient
    assert torch.isfinite(per).all() and torch.isfinite(grad).all(), options
    if scale <= 30:
        m = options['bucket_size']
        want = torch.stack([
            ref_bucket(x[i:i + m].double(), y[i:i + m], options['tp'],
                       options['tn'], options['ways'], options['margin'])
            for i in range(0, x.shape[0], m)
        ])
        torch.testing.assert_close(
            per.double(), want, rtol=1e-4 if dtype == torch.float32 else
            1e-7, atol=1e-4 if dtype == torch.float32 else 1e-9)
    # illegal input in one entry: exactly its bucket's loss is NaN
    i = int(torch.randint(x.shape[0], (), generator=g))
    j = int(torch.randint(x.shape[1], (), generator=g))
    bad_x, bad_y = x.clone(), y.clone()
    kind = seed % 4
    if kind == 3:
        bad_y[i, j] = NAN
    else:
        bad_x[i, j] = (INF, -INF, NAN)[kind]
    per = loss(bad_x, bad_y.to(x.dtype), reduction_override='none')
    hit = i // options['bucket_size']
    assert math.isnan(per[hit].item())
    others = torch.cat([per[:hit], per[hit + 1:]])
    assert torch.isfinite(others).all()


def test_fuzz_functional_form_half_precision():
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        x, y, options, scale = random_case(g)
        if scale > 30:  # beyond float16's range: legal only in float32
            continue
        for dtype in (torch.float16, torch.bfloat16):
            xh = x.to(dtype).requires_grad_(True)
            per = two_way_loss(xh.unsqueeze(0), y.to(dtype).unsqueeze(0),
                               options['tp'], options['tn'], options['ways'],
                               options['margin'])
            per.sum().backward()
            assert torch.isfinite(per).all()
            assert torch.isfinite(xh.grad.float()).all()
