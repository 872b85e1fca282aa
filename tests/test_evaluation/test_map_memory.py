"""mean_ap / MultiLabelMAP in chunks: same result, bounded working memory."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.dataset import DefaultSampler

from mmtwoway.evaluation import MultiLabelMAP, average_precision, mean_ap
from mmtwoway.evaluation.functional.average_precision import slices_per_chunk
from test_map_nonfinite import brute_map, random_case

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def sparse_problem(n, c, seed, labelled=0.01, positive=0.35):
    """Scores and targets with ~99% ignored entries, like Open Images."""
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n, c)).astype(np.float32)
    targets = np.full((n, c), -1, np.int8)
    known = rng.random((n, c)) < labelled
    targets[known] = (rng.random(int(known.sum())) < positive)
    scores[(targets < 0) & (rng.random((n, c)) < 0.1)] = np.nan
    return scores, targets


@pytest.mark.parametrize('budget', [1, 20_000, 300_000])
@pytest.mark.parametrize('dim', [0, 1])
def test_chunks_give_the_unchunked_aps(budget, dim):
    scores, targets = sparse_problem(700, 90, seed=budget + dim,
                                     labelled=0.05)
    assert slices_per_chunk(scores.shape[dim], 4, budget) < 90
    whole = average_precision(scores, targets, dim, max_memory=None)
    chunked = average_precision(scores, targets, dim, max_memory=budget)
    # Equal up to the rounding of the sum over a chunk's padded width.
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), rtol=0,
                               atol=1e-14)
    for way in ('class', 'sample'):
        assert mean_ap(scores, targets, way, max_memory=budget).item() == \
            pytest.approx(mean_ap(scores, targets, way, None).item(),
                          abs=1e-12)


@pytest.mark.parametrize('seed', range(0, 300, 7))
def test_fuzz_in_chunks_of_one_slice(seed):
    rng = np.random.default_rng(seed)
    scores, targets = random_case(rng)
    for way in ('class', 'sample'):
        want = brute_map(scores, targets, way)
        if want is None:
            with pytest.raises(ValueError, match='undefined'):
                mean_ap(scores, targets, way, max_memory=1)
            continue
        assert mean_ap(scores, targets, way, max_memory=1).item() == \
            pytest.approx(want, abs=1e-9)


def test_nan_target_is_found_in_any_chunk():
    scores, targets = sparse_problem(50, 40, seed=3)
    targets = targets.astype(np.float32)
    targets[37, 29] = np.nan
    for way in ('class', 'sample'):
        with pytest.raises(ValueError,
                           match='first at sample 37, class 29'):
            mean_ap(scores, targets, way, max_memory=1)
    with pytest.raises(ValueError, match='max_memory'):
        mean_ap(scores, targets, 'class', max_memory=0)


_PEAK = textwrap.dedent('''
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_map_memory import sparse_problem
    from mmtwoway.evaluation import mean_ap
    scores, targets = sparse_problem(2000, 2500, seed=0)

    def rss(field):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024

    # One-time allocations (thread pools, sort buffers) before measuring.
    small = sparse_problem(50, 40, seed=1, labelled=0.3)
    mean_ap(*small, 'class')
    mean_ap(*small, 'sample')
    out = {{}}
    for budget in (8 << 20, None):
        for way in ('class', 'sample'):
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset the peak (VmHWM) to the current RSS
            base = rss('VmRSS')
            mean_ap(scores, targets, way, max_memory=budget)
            out[f'{{way}} {{budget}}'] = rss('VmHWM') - base
    print(json.dumps(out))
''')


@pytest.mark.slow
def test_working_memory_stays_within_the_budget():
    """Peak RSS above the inputs, measured in a fresh process."""
    code = _PEAK.format(tests=os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr
    peak = json.loads(run.stdout.strip().splitlines()[-1])
    budget = 8 << 20
    for way in ('class', 'sample'):
        # Within the budget (plus allocator slack) ...
        assert peak[f'{way} {budget}'] < budget + (4 << 20), peak
        # ... where ranking everything at once takes several times more.
        assert peak[f'{way} None'] > 3 * budget, peak


def test_metric_budget_gives_the_same_maps():
    scores, targets = sparse_problem(300, 40, seed=5, labelled=0.1)
    results = []
    for budget in (None, 1, 50_000):
        metric = MultiLabelMAP(max_memory=budget)
        metric.process(None, [
            dict(pred_score=torch.from_numpy(s),
                 gt_score=torch.from_numpy(t.astype(np.float32)),
                 sample_idx=i)
            for i, (s, t) in enumerate(zip(scores, targets))
        ])
        results.append(metric.evaluate(len(scores)))
    assert results[1] == pytest.approx(results[0], abs=1e-12)
    assert results[2] == pytest.approx(results[0], abs=1e-12)
    with pytest.raises(ValueError, match='max_memory'):
        MultiLabelMAP(max_memory=-5)


def _worker(rank, world, init_file, out_dir, size, budget):
    """One gloo rank: DefaultSampler shard, process, evaluate."""
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world)
    try:
        scores, targets = sparse_problem(size, 30, seed=9, labelled=0.2)
        sampler = DefaultSampler(list(range(size)), shuffle=False)
        metric = MultiLabelMAP(max_memory=budget)
        metric.process(None, [
            dict(pred_score=torch.from_numpy(scores[i]),
                 gt_score=torch.from_numpy(targets[i].astype(np.float32)),
                 sample_idx=i) for i in sampler
        ])
        with open(f'{out_dir}/rank{rank}.json', 'w') as f:
            json.dump(metric.evaluate(size), f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_gather_class_chunks(tmp_path):
    size, budget = 61, 4_000  # odd size: rank 1 is padded; ~2 classes/chunk
    assert slices_per_chunk(size, 4, budget) < 5
    mp.spawn(_worker, args=(2, str(tmp_path / 'init'), str(tmp_path), size,
                            budget), nprocs=2, join=True)
    scores, targets = sparse_problem(size, 30, seed=9, labelled=0.2)
    want = {f'multi-label/mAP@{way}': mean_ap(scores, targets, way).item()
            for way in ('class', 'sample')}
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.json') as f:
            assert json.load(f) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize('dim', [0, 1])
def test_mostly_ignored_matrix_equals_sklearn(dim):
    """The compacted ranking (99% ignored entries) against sklearn on each
    slice's labelled entries, ties included."""
    from test_functional import sklearn_ap
    scores, targets = sparse_problem(3000, 60, seed=11, labelled=0.01)
    scores = np.round(scores, 1)  # ties
    got = average_precision(scores, targets, dim).numpy()
    want = sklearn_ap(scores, targets, dim)
    assert np.isfinite(want).sum() > 20
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
