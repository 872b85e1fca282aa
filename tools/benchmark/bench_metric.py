"""Time of mAP@class / mAP@sample with mmtwoway's ``mean_ap`` beside sklearn.

    python tools/benchmark/bench_metric.py [--repeat 3] [--rate 0.03]

Random float32 scores with about 3% positives at the size of the COCO 2014
val set (40,137 x 80) and the VAW test set (31,819 x 620). Every row and
column gets at least one positive (every image has a label), so mmtwoway's
mean over the slices with positives and sklearn's ``average='macro'`` /
``'samples'`` define the same number. Each timing is the best of
``--repeat`` runs, mean_ap and sklearn taking turns; the last column is
|mean_ap - sklearn| in mAP points. The "both" line of a shape adds up the
two metrics' best times (what an evaluation computes every epoch).
"""
import argparse
import os
import time
import warnings
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from mmtwoway.evaluation import mean_ap

SHAPES = [(40137, 80), (31819, 620)]
SKLEARN_AVERAGE = {'class': 'macro', 'sample': 'samples'}


def make_data(shape: Tuple[int, int], rate: float,
              seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """float32 logits and 0/1 targets, at least one positive per row and
    column."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(shape, generator=gen)
    targets = (torch.rand(shape, generator=gen) < rate).to(torch.int64)
    n, c = shape
    k = torch.arange(max(n, c))
    targets[k % n, torch.randint(0, c, (k.numel(), ), generator=gen)] = 1
    targets[torch.randint(0, n, (c, ), generator=gen), torch.arange(c)] = 1
    return scores, targets


def best_times(fns: Sequence[Callable[[], float]],
               repeat: int) -> List[Tuple[float, float]]:
    """Best wall time in seconds of each function, and its value.

    The functions take turns, so that a load change on the machine affects
    all of them alike.
    """
    times = [float('inf')] * len(fns)
    values = [float('nan')] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            values[i] = fn()
            times[i] = min(times[i], time.perf_counter() - start)
    return list(zip(times, values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs per measurement (best is shown)')
    parser.add_argument('--rate', type=float, default=0.03,
                        help='fraction of positive entries')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    print(f'torch {torch.__version__}, numpy {np.__version__}, '
          f'{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, '
          f'load average {os.getloadavg()[0]:.2f}; best of {args.repeat}')
    header = (f'{"shape":>12} {"metric":>11} {"mean_ap [s]":>12} '
              f'{"sklearn [s]":>12} {"speed-up":>9} {"|diff|":>9}')
    print(header)
    print('-' * len(header))
    for shape in SHAPES:
        scores, targets = make_data(shape, args.rate, args.seed)
        y, s = targets.numpy(), scores.numpy()
        total_ours = total_ref = 0.
        for way in ('class', 'sample'):
            mean_ap(scores, targets, way)  # warm-up (allocator, threads)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                (ours_t, ours), (ref_t, ref) = best_times([
                    lambda: mean_ap(scores, targets, way).item(),
                    lambda: 100 * average_precision_score(
                        y, s, average=SKLEARN_AVERAGE[way]),
                ], args.repeat)
            print(f'{str(shape):>12} {"mAP@" + way:>11} {ours_t:12.3f} '
                  f'{ref_t:12.3f} {ref_t / ours_t:8.1f}x '
                  f'{abs(ours - ref):9.1e}')
            total_ours, total_ref = total_ours + ours_t, total_ref + ref_t
        print(f'{str(shape):>12} {"both":>11} {total_ours:12.3f} '
              f'{total_ref:12.3f} {total_ref / total_ours:8.1f}x')


if __name__ == '__main__':
    main()
