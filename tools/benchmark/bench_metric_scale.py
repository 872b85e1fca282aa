"""Time and peak memory of mAP at Open Images scale, beside sklearn and
torchmetrics.

    python tools/benchmark/bench_metric_scale.py [--shapes 40000x80 ...]
        [--labels-per-image 9] [--positive 0.5] [--max-memory-mb 1024]
        [--methods mean_ap sklearn torchmetrics] [--ways class sample]
        [--timeout 600] [--out rows.json]

Synthetic partially labelled matrices: float32 scores, int8 targets with
``--labels-per-image`` verified labels per sample (``--positive`` of them
positive), every other entry ignored (-1), as in the Open Images test set
(about 9 verified labels per image of 9,600 classes: 99.9% ignored).
Every (shape, method, way) runs in its own process: the time is the wall
time of the metric call, the memory its peak RSS above the inputs
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``). A run
that exceeds ``--timeout`` seconds, or the ``--max-input-gb`` of memory
its method would need, is reported as not run.

* ``mean_ap``: mmtwoway, within ``--max-memory-mb`` of working memory;
* ``sklearn``: ``average_precision_score`` on the labelled entries of each
  slice (classes, or samples), the reference definition;
* ``torchmetrics``: ``MultilabelAveragePrecision(average='macro',
  ignore_index=-1)`` (mAP@class only: it has no per-sample average); it
  keeps every score and an int64 copy of the targets.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, Tuple

import numpy as np

_BLOCK = 4096  # rows generated at a time (no full-size float64 temporary)


def make_data(n: int, c: int, labels: float, positive: float,
              seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """float32 scores and int8 targets (1 / 0 / -1), built in row blocks."""
    rng = np.random.default_rng(seed)
    scores = np.empty((n, c), np.float32)
    targets = np.full((n, c), -1, np.int8)
    k = max(1, min(c, int(round(labels))))
    for start in range(0, n, _BLOCK):
        rows = min(_BLOCK, n - start)
        scores[start:start + rows] = rng.standard_normal((rows, c),
                                                         dtype=np.float32)
        cols = rng.integers(0, c, (rows, k))
        vals = (rng.random((rows, k)) < positive).astype(np.int8)
        targets[start + np.arange(rows)[:, None], cols] = vals
        # Positives score higher on average, as a trained model's would.
        scores[start + np.arange(rows)[:, None], cols] += 1.5 * vals
    return scores, targets


def _rss(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def sklearn_map(scores: np.ndarray, targets: np.ndarray, way: str) -> float:
    """mAP in percent from sklearn, ignored entries removed per slice."""
    from sklearn.metrics import average_precision_score
    rows, cols = np.nonzero(targets >= 0)
    if way == 'class':
        rows, cols = cols, rows  # group by class
        order = np.argsort(rows, kind='stable')
        rows, cols = rows[order], cols[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    aps = []
    for a, b in zip(starts, np.r_[starts[1:], len(rows)]):
        i, j = (rows[a:b], cols[a:b]) if way == 'sample' else (cols[a:b],
                                                                rows[a:b])
        t = targets[i, j] > 0
        if t.any():
            aps.append(average_precision_score(t, scores[i, j]))
    return 100 * float(np.mean(aps))


def torchmetrics_map(scores: np.ndarray, targets: np.ndarray) -> float:
    """mAP@class in percent from torchmetrics (ignore_index=-1)."""
    import torch
    from torchmetrics.classification import MultilabelAveragePrecision
    metric = MultilabelAveragePrecision(
        num_labels=scores.shape[1], average='none', ignore_index=-1)
    metric.update(torch.from_numpy(scores), torch.from_numpy(targets).long())
    ap = metric.compute()
    # Classes without a positive give NaN or 0 there; leave them out as
    # mean_ap does.
    has_pos = torch.from_numpy((targets > 0).any(0))
    return float(ap[has_pos].mean() * 100)


def child(args: argparse.Namespace) -> Dict[str, float]:
    """Generate the data, run one method once, report time and memory."""
    import torch
    torch.set_num_threads(1)
    n, c = (int(v) for v in args.shape.split('x'))
    scores, targets = make_data(n, c, args.labels_per_image, args.positive)
    if args.method == 'mean_ap':
        from mmtwoway.evaluation import mean_ap
        small = make_data(64, 16, 4, 0.5, seed=1)
        mean_ap(*small, args.way)  # one-time allocations before measuring
        fn = lambda: float(mean_ap(  # noqa: E731
            scores, targets, args.way,
            max_memory=args.max_memory_mb << 20))
    elif args.method == 'sklearn':
        fn = lambda: sklearn_map(scores, targets, args.way)  # noqa: E731
    else:
        fn = lambda: torchmetrics_map(scores, targets)  # noqa: E731
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    base = _rss('VmRSS')
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, cpu_seconds=time.process_time() - cpu,
                peak_mb=(_rss('VmHWM') - base) / 2**20,
                inputs_mb=(scores.nbytes + targets.nbytes) / 2**20,
                value=value)


def input_gb(method: str, n: int, c: int) -> float:
    """Memory a method needs for its inputs and their copies (GB)."""
    per_entry = {'mean_ap': 5, 'sklearn': 5 + 2, 'torchmetrics': 5 + 8 + 13}
    return n * c * per_entry[method] / 1e9


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', nargs='+',
                        default=['40000x80', '125456x600', '125456x9600'])
    parser.add_argument('--methods', nargs='+',
                        default=['mean_ap', 'sklearn', 'torchmetrics'],
                        choices=['mean_ap', 'sklearn', 'torchmetrics'])
    parser.add_argument('--ways', nargs='+', default=['class', 'sample'],
                        choices=['class', 'sample'])
    parser.add_argument('--labels-per-image', type=float, default=9.0)
    parser.add_argument('--positive', type=float, default=0.5)
    parser.add_argument('--max-memory-mb', type=int, default=1024)
    parser.add_argument('--max-input-gb', type=float, default=12.0)
    parser.add_argument('--timeout', type=int, default=600)
    parser.add_argument('--out', help='also write the rows as JSON')
    # Internal: one measurement in a child process.
    parser.add_argument('--child', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--shape', help=argparse.SUPPRESS)
    parser.add_argument('--method', help=argparse.SUPPRESS)
    parser.add_argument('--way', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    import torch
    print(f'python {sys.version.split()[0]}, numpy {np.__version__}, torch '
          f'{torch.__version__}, 1 thread per run, {os.cpu_count()} CPUs; '
          f'{args.labels_per_image:g} labels per sample, '
          f'{args.positive:g} positive; mean_ap budget '
          f'{args.max_memory_mb} MiB', flush=True)
    header = (f'{"shape":>12} {"way":>6} {"method":>12} {"time [s]":>9} '
              f'{"CPU [s]":>8} '
              f'{"peak [MiB]":>11} {"inputs [MiB]":>12} {"mAP":>9} '
              f'{"|diff|":>8}')
    print(header + '\n' + '-' * len(header), flush=True)
    rows = []
    for shape in args.shapes:
        n, c = (int(v) for v in shape.split('x'))
        for way in args.ways:
            ref = None
            for method in args.methods:
                if method == 'torchmetrics' and way == 'sample':
                    continue
                row = dict(shape=shape, way=way, method=method)
                if input_gb(method, n, c) > args.max_input_gb:
                    row['skipped'] = (f'needs ~{input_gb(method, n, c):.0f} '
                                      'GB')
                else:
                    row.update(_run(args, shape, method, way))
                if method == 'mean_ap' and 'value' in row:
                    ref = row['value']
                rows.append(row)
                print(_format(row, ref), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)


def _run(args, shape: str, method: str, way: str) -> dict:
    """One measurement in a fresh process (or why it did not finish)."""
    cmd = [sys.executable, __file__, '--child', '--shape', shape,
           '--method', method, '--way', way, '--labels-per-image',
           str(args.labels_per_image), '--positive', str(args.positive),
           '--max-memory-mb', str(args.max_memory_mb)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, env=env,
                             timeout=args.timeout + 300)
    except subprocess.TimeoutExpired:
        return dict(skipped=f'> {args.timeout} s')
    if run.returncode != 0:
        return dict(skipped=f'failed: {run.stderr.strip()[-200:]}')
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if result['seconds'] > args.timeout:
        result['note'] = f'over {args.timeout} s'
    return result


def _format(row: dict, ref) -> str:
    head = f'{row["shape"]:>12} {row["way"]:>6} {row["method"]:>12}'
    if 'skipped' in row:
        return f'{head}   not run: {row["skipped"]}'
    diff = abs(row['value'] - ref) if ref is not None else float('nan')
    return (f'{head} {row["seconds"]:9.2f} '
            f'{row.get("cpu_seconds", float("nan")):8.2f} '
            f'{row["peak_mb"]:11.1f} '
            f'{row["inputs_mb"]:12.1f} {row["value"]:9.4f} {diff:8.1e}')


if __name__ == '__main__':
    main()
