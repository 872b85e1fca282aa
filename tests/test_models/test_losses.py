"""TwoWayLoss against an independent float64 reference of eqs. 14-17, 22."""
import math

import pytest
import torch

from mmtwoway.models.losses import TwoWayLoss, two_way_loss
from reference_two_way import ref_bucket, ref_ell

def random_problem(n=8, c=6, seed=0, ignore=0.2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * 3
    y = (torch.rand(n, c, generator=g) < 0.35).double()
    y[torch.rand(n, c, generator=g) < ignore] = -1
    return x, y


def loss_and_grad(fn, x):
    x = x.clone().requires_grad_(True)
    value = fn(x)
    (grad, ) = torch.autograd.grad(value, x)
    return value.detach(), grad


# ------------------------------------------------------------------- values


@pytest.mark.parametrize('ways', ['both', 'sample', 'class', 'joint'])
@pytest.mark.parametrize('tp,tn,margin', [(4., 1., 0.), (1., 1., 0.),
                                          (2., 0.5, 0.), (0., 1., 0.),
                                          (4., 1., 2.)])
def test_matches_reference_values_and_gradients(ways, tp, tn, margin):
    for seed in range(3):
        x, y = random_problem(seed=seed)
        loss = TwoWayLoss(tp=tp, tn=tn, ways=ways, margin=margin)
        got, got_grad = loss_and_grad(lambda v: loss(v, y), x)
        want, want_grad = loss_and_grad(
            lambda v: ref_bucket(v, y, tp, tn, ways, margin), x)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-7, atol=1e-9)


def test_paper_defaults_and_eq17_is_sum_of_ways():
    x, y = random_problem(seed=5)
    both = TwoWayLoss()(x, y)
    assert TwoWayLoss().tp == 4.0 and TwoWayLoss().tn == 1.0
    torch.testing.assert_close(
        both,
        TwoWayLoss(ways='sample')(x, y) + TwoWayLoss(ways='class')(x, y))


def test_single_label_sample_way_is_softmax_cross_entropy():
    # With one positive per row, eq. 15 reduces to the softmax loss (eq. 1).
    x = torch.randn(5, 7, dtype=torch.float64)
    labels = torch.tensor([0, 3, 6, 2, 2])
    y = torch.nn.functional.one_hot(labels, 7).double()
    got = TwoWayLoss(ways='sample', tp=4.0)(x, y)
    torch.testing.assert_close(got,
                               torch.nn.functional.cross_entropy(x, labels))


# ---------------------------------------------------------- empty and edges


def test_rows_without_positives_are_left_out_of_the_mean():
    x, y = random_problem(seed=1, ignore=0.)
    y[2] = 0  # a row with negatives only
    y[4] = -1  # a fully ignored row
    loss = TwoWayLoss(ways='sample')(x, y)
    keep = [i for i in range(8) if i not in (2, 4)]
    torch.testing.assert_close(loss,
                               TwoWayLoss(ways='sample')(x[keep], y[keep]))


def test_all_positive_column_contributes_zero_and_counts():
    x = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([[1., 0, 0], [1, 1, 0], [1, 0, 1], [1, 0, 0]])
    per_col = [
        ref_ell([x[i, j] for i in range(4)], y[:, j].tolist(), 4., 1., 0.)
        for j in range(3)
    ]
    assert per_col[0] == 0
    got = TwoWayLoss(ways='class')(x, y)
    torch.testing.assert_close(got, (per_col[1] + per_col[2]) / 3)


@pytest.mark.parametrize('ways', ['both', 'sample', 'class', 'joint'])
def test_batch_without_positives_is_zero_on_graph_not_nan(ways):
    x = torch.randn(6, 4, requires_grad=True)
    y = torch.zeros(6, 4)
    y[0] = -1
    loss = TwoWayLoss(ways=ways)(x, y)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_ignored_entries_are_excluded_exactly_for_any_magnitude():
    x, y = random_problem(seed=2)
    base = TwoWayLoss()(x, y)
    for big in (1e4, -1e4, 1e30, -1e30):
        x2 = x.clone()
        x2[y < 0] = big
        x2 = x2.float().double()  # also exercise the float32 path below
        torch.testing.assert_close(TwoWayLoss()(x2, y), base)
        got32 = TwoWayLoss()(x2.float(), y.float())
        torch.testing.assert_close(got32, base.float(), rtol=1e-5, atol=1e-6)
        g = x2.float().requires_grad_(True)
        TwoWayLoss()(g, y.float()).backward()
        assert torch.isfinite(g.grad).all()
        assert torch.all(g.grad[y < 0] == 0)


def test_huge_logits_stay_finite():
    x, y = random_problem(seed=3, ignore=0.)
    x = (x * 1e4).float().requires_grad_(True)
    loss = TwoWayLoss()(x, y.float())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_invariant_to_constant_shift():
    x, y = random_problem(seed=4)
    for ways in ('both', 'sample', 'class', 'joint'):
        loss = TwoWayLoss(ways=ways)
        torch.testing.assert_close(loss(x + 1000., y), loss(x, y))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    x, y = random_problem(seed=6)
    xh = x.to(dtype).requires_grad_(True)
    loss = TwoWayLoss()(xh, y.to(dtype))
    assert loss.dtype == torch.float32
    want = ref_bucket(xh.detach().double(), y)
    torch.testing.assert_close(loss.double(), want, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert xh.grad.dtype == dtype and torch.isfinite(xh.grad.float()).all()


def test_weight_zero_means_ignored():
    x, y = random_problem(seed=7, ignore=0.)
    w = torch.ones_like(y)
    w[1, 2] = w[5, 0] = 0
    y_ign = y.clone()
    y_ign[w == 0] = -1
    torch.testing.assert_close(TwoWayLoss()(x, y, weight=w),
                               TwoWayLoss()(x, y_ign))


def test_loss_weight_avg_factor_and_reductions():
    x, y = random_problem(seed=8)
    base = TwoWayLoss()(x, y)
    torch.testing.assert_close(TwoWayLoss(loss_weight=0.5)(x, y), base * 0.5)
    torch.testing.assert_close(TwoWayLoss()(x, y, avg_factor=123), base)
    per = TwoWayLoss(bucket_size=4)(x, y, reduction_override='none')
    assert per.shape == (2, )
    torch.testing.assert_close(
        TwoWayLoss(bucket_size=4)(x, y, reduction_override='sum'), per.sum())


@pytest.mark.parametrize('kwargs', [
    dict(ways='rows'),
    dict(tp=-1.),
    dict(bucket_size=0),
    dict(bucket_size=2.5),
])
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TwoWayLoss(**kwargs)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match='same shape'):
        TwoWayLoss()(torch.randn(4, 3), torch.zeros(4))


# ------------------------------------------------------------------ buckets


@pytest.mark.parametrize('m', [1, 2, 4, 8])
def test_local_buckets_are_consecutive_and_averaged(m):
    x, y = random_problem(n=8, seed=9)
    got = TwoWayLoss(bucket_size=m)(x, y)
    want = torch.stack([
        ref_bucket(x[i:i + m], y[i:i + m]) for i in range(0, 8, m)
    ]).mean()
    torch.testing.assert_close(got, want)


def test_bucket_size_that_does_not_divide_is_an_error():
    x, y = random_problem(n=8)
    with pytest.raises(ValueError, match='does not divide'):
        TwoWayLoss(bucket_size=3)(x, y)
    with pytest.raises(ValueError, match='spans'):
        TwoWayLoss(bucket_size=16)(x, y)  # no process group to span


def test_functional_form_takes_bucket_dims():
    x, y = random_problem(n=8, seed=10)
    per = two_way_loss(x.view(2, 4, 6), y.view(2, 4, 6))
    torch.testing.assert_close(
        per, torch.stack([ref_bucket(x[:4], y[:4]),
                          ref_bucket(x[4:], y[4:])]))


# ---------------------------------------------------------- host sync free


@pytest.mark.parametrize('ways', ['both', 'joint'])
def test_forward_and_backward_never_sync_with_the_host(ways, op_recorder,
                                                      syncing_ops):
    x, y = random_problem(n=16, c=10, seed=11)
    x = x.float().requires_grad_(True)
    with op_recorder() as rec:
        TwoWayLoss(ways=ways, bucket_size=8)(x, y.float()).backward()
    assert rec.ops, 'the recorder saw no op'
    bad = [op for op in rec.ops if op in syncing_ops + ('index', )]
    assert not bad, f'host-syncing ops: {bad}'


def test_recorder_would_catch_boolean_indexing(op_recorder):
    # The check above can fail: boolean-mask indexing is seen.
    x = torch.randn(4, 3)
    with op_recorder() as rec:
        x[x > 0].sum()
    assert any(op in ('index', 'nonzero') for op in rec.ops)


def test_temperature_zero_is_hard_min_max():
    x = torch.tensor([[3., 1., -2., 0.5]], dtype=torch.float64)
    y = torch.tensor([[1., 1., 0., 0.]])
    got = TwoWayLoss(tp=0., tn=0., ways='sample')(x, y)
    want = math.log1p(math.exp(0.5 - 1.))  # max neg - min pos
    assert abs(got.item() - want) < 1e-12


# ------------------------------------------- buckets spanning several ranks


def _ddp_bucket_worker(rank, world, init_file, out_dir, n_local, bucket_size):
    """One DDP rank: local logits, TwoWayLoss(bucket_size), backward."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world)
    data, target, model = _bucket_problem(world * n_local)
    ddp = DistributedDataParallel(model)
    part = slice(rank * n_local, (rank + 1) * n_local)
    loss = TwoWayLoss(bucket_size=bucket_size)(ddp(data[part]), target[part])
    loss.backward()
    torch.save(dict(loss=loss.detach(),
                    grads=[p.grad for p in model.parameters()]),
               f'{out_dir}/{rank}.pt')
    dist.destroy_process_group()


def _bucket_problem(n):
    g = torch.Generator().manual_seed(123)
    data = torch.randn(n, 6, generator=g, dtype=torch.float64)
    target = (torch.rand(n, 5, generator=g) < 0.3).double()
    target[torch.rand(n, 5, generator=g) < 0.15] = -1
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 5).double()
    return data, target, model


@pytest.mark.slow
@pytest.mark.parametrize('world,n_local,bucket_size', [
    (2, 4, 8),  # one bucket over both ranks
    (4, 2, 4),  # two buckets, each over two ranks
    (2, 4, 2),  # buckets inside each rank
])
def test_cross_rank_buckets_give_single_process_gradients(
        tmp_path, world, n_local, bucket_size):
    import torch.multiprocessing as mp
    mp.spawn(
        _ddp_bucket_worker,
        args=(world, str(tmp_path / 'init'), str(tmp_path), n_local,
              bucket_size),
        nprocs=world,
        join=True)
    data, target, model = _bucket_problem(world * n_local)
    single = TwoWayLoss(bucket_size=bucket_size)(model(data), target)
    single.backward()
    want = [p.grad for p in model.parameters()]
    losses = []
    for rank in range(world):
        got = torch.load(tmp_path / f'{rank}.pt')
        losses.append(got['loss'])
        for g, w in zip(got['grads'], want):
            torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)
    # DDP averages the ranks' losses' gradients: so must the loss values
    torch.testing.assert_close(torch.stack(losses).mean(), single.detach())
