"""Per-class AP bars of one or several result files, side by side.

    python tools/analysis/plot_ap.py RESULTS... --out ap.png \\
        [--labels two-way asl] [--classes FILE]

Classes are sorted by the AP of the first file (highest first); each file
gets one bar per class, and a grey line on the right axis gives every
class's frequency (its number of positive samples in the first file's set).
The legend gives each file's mAP@class over the classes with positives.

RESULTS, one of (chosen by the extension):

* ``.pkl`` / ``.pickle``: what ``tools/test.py CONFIG CKPT --out FILE.pkl``
  writes (mmengine's ``DumpResults``): a list with one dict per test
  sample, holding at least ``pred_score`` (C scores) and ``gt_label``
  (positive class indices) or ``gt_score`` (1 positive, 0 negative, -1
  ignored). Class names do not travel in it: give ``--classes``.
* ``.json``: a calibration file of ``tools/calibrate.py``, which stores
  ``classes`` and, under ``validation.per_class``, ``ap`` (percent, null
  without positives) and ``num_positives`` of the calibration set.

``--classes`` is a calibration json (its ``classes``) or a text file with
one class name per line. Files of other class counts or names than the
first are refused.
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw per-class AP bars of result files side by side')
    parser.add_argument(
        'results', nargs='+', help='.pkl of tools/test.py --out, or .json of '
        'tools/calibrate.py')
    parser.add_argument('--out', required=True, help='output PNG file')
    parser.add_argument(
        '--labels', nargs='+', help='legend names (default: file names)')
    parser.add_argument(
        '--classes',
        help='class names: a calibration json or a text file, one per line')
    parser.add_argument('--title', default='Per-class AP', help='plot title')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.results):
        parser.error(f'{len(args.labels)} --labels for {len(args.results)} '
                     'result files')
    if not args.out.lower().endswith('.png'):
        parser.error(f'--out must be a .png file, got {args.out}')
    return args


def read_class_names(path: str) -> List[str]:
    """Class names from a calibration json or a text file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--classes file {path} does not exist')
    if path.lower().endswith('.json'):
        from mmtwoway.evaluation.decision import load_calibration
        return list(load_calibration(path)['classes'])
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def _from_pickle(path: str) -> Dict:
    """Per-class AP and positives of a ``tools/test.py --out`` pickle."""
    import mmengine
    import torch

    from mmtwoway.evaluation import average_precision
    from mmtwoway.structures import metric_target

    samples = mmengine.load(path)
    if not isinstance(samples, list) or not samples or not all(
            isinstance(s, dict) and 'pred_score' in s for s in samples):
        raise ValueError(f'{path} is not a tools/test.py --out file: '
                         'expected a list of per-sample dicts with '
                         'pred_score')
    scores = torch.stack(
        [torch.as_tensor(s['pred_score']).float() for s in samples])
    try:
        targets = metric_target(samples, scores.shape[1])
    except ValueError as err:
        raise ValueError(f'{path}: {err}') from err
    return dict(
        ap=(average_precision(scores, targets, dim=0) * 100).numpy(),
        num_positives=(targets > 0).sum(0).numpy(),
        classes=None)


def _from_calibration(path: str) -> Dict:
    """Per-class AP and positives stored in a calibration file."""
    from mmtwoway.evaluation.decision import load_calibration
    data = load_calibration(path)
    per_class = data.get('validation', {}).get('per_class', {})
    if 'ap' not in per_class or 'num_positives' not in per_class:
        raise ValueError(f'calibration file {path} has no per-class AP '
                         '(validation.per_class.ap / num_positives)')
    ap = np.array([np.nan if v is None else v for v in per_class['ap']],
                  dtype=float)
    return dict(
        ap=ap,
        num_positives=np.asarray(per_class['num_positives']),
        classes=list(data['classes']))


def load_result(path: str) -> Dict:
    """``ap`` (C,) percent (NaN without positives), ``num_positives``
    (C,) and ``classes`` (names or None) of one result file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'result file {path} does not exist')
    if path.lower().endswith(('.pkl', '.pickle')):
        return _from_pickle(path)
    if path.lower().endswith('.json'):
        return _from_calibration(path)
    raise ValueError(f'result file {path}: expected a .pkl of tools/test.py '
                     '--out or a .json of tools/calibrate.py')


def check_same_classes(results: List[Dict], paths: Sequence[str],
                       names: Optional[List[str]]) -> List[str]:
    """The shared class names; raise if the files disagree."""
    num = len(results[0]['ap'])
    for res, path in zip(results, paths):
        if len(res['ap']) != num:
            raise ValueError(f'{path} has {len(res["ap"])} classes but '
                             f'{paths[0]} has {num}')
    known = names or next(
        (r['classes'] for r in results if r['classes'] is not None), None)
    if known is not None and len(known) != num:
        raise ValueError(f'{len(known)} class names for {num} classes')
    for res, path in zip(results, paths):
        if known is not None and res['classes'] is not None and list(
                res['classes']) != list(known):
            raise ValueError(f'{path} has other class names than the '
                             'first file (or --classes)')
    return list(known) if known is not None else [
        f'class {i}' for i in range(num)
    ]


def plot(results: List[Dict], labels: Sequence[str], classes: List[str],
         title: str, out: str) -> None:
    """Grouped AP bars sorted by the first result, frequency on the right.

    Args:
        results: Per-file ``ap`` and ``num_positives``.
        labels: Legend name of each file.
        classes: Class names.
        title: Figure title.
        out: PNG to write.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    first = results[0]['ap']
    keep = np.flatnonzero(~np.isnan(first))
    # Highest AP first; a stable sort keeps the class order among ties.
    order = keep[np.argsort(-first[keep], kind='stable')]
    num, width = len(order), 0.8 / len(results)
    fig_w = float(np.clip(0.28 * num * max(1, len(results) / 2) + 2.5, 8,
                          60))
    fig, ax = plt.subplots(figsize=(fig_w, 5.5), dpi=100)
    x = np.arange(num)
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, (res, label) in enumerate(zip(results, labels)):
        ap = res['ap']
        mean = np.nanmean(ap)
        ax.bar(
            x + (i - (len(results) - 1) / 2) * width,
            np.nan_to_num(ap[order]),
            width,
            label=f'{label} (mAP@class {mean:.2f})',
            color=colors[i % len(colors)])
    ax.set_xticks(x)
    ax.set_xticklabels([classes[c] for c in order], rotation=90,
                       fontsize=9)
    ax.set_xlim(-0.6, num - 0.4)
    ax.set_ylim(0, 105)
    ax.set_ylabel('AP (%)')
    freq_ax = ax.twinx()
    freq = results[0]['num_positives'][order]
    freq_ax.plot(x, freq, color='0.35', marker='.', linewidth=1,
                 label='positives (class frequency)')
    freq_ax.set_ylabel('positive samples')
    freq_ax.set_ylim(0, max(1, freq.max()) * 1.15)
    handles, names = ax.get_legend_handles_labels()
    f_handles, f_names = freq_ax.get_legend_handles_labels()
    # Above the axes: inside, it would hide bars or the frequency line.
    ax.legend(handles + f_handles, names + f_names, loc='lower center',
              bbox_to_anchor=(0.5, 1.0), ncol=min(3, len(names) + 1),
              fontsize=9, frameon=False)
    dropped = len(first) - num
    if dropped:
        ax.text(1, -0.02, f'{dropped} class(es) without positives left out',
                transform=ax.transAxes, ha='right', va='top', fontsize=8)
    ax.set_title(title, pad=12 + 16 * -(-(len(names) + 1) // 3))
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, format='png')
    plt.close(fig)


def main(argv: Sequence[str] = None) -> None:
    args = parse_args(argv)
    results = [load_result(p) for p in args.results]
    names = read_class_names(args.classes) if args.classes else None
    classes = check_same_classes(results, args.results, names)
    labels = args.labels or [
        osp.splitext(osp.basename(p))[0] for p in args.results
    ]
    first = results[0]['num_positives']
    for res, path in zip(results[1:], args.results[1:]):
        if not np.array_equal(res['num_positives'], first):
            # Legitimate (e.g. two test sets), but the frequency line is
            # the first file's only.
            print(f'note: {path} was evaluated on another set than '
                  f'{args.results[0]} (other class frequencies); the '
                  'frequency line is that of the first file')
    plot(results, labels, classes, args.title, args.out)
    summary = ', '.join(f'{label}: mAP@class {np.nanmean(r["ap"]):.2f}'
                        for label, r in zip(labels, results))
    print(f'{summary}; saved {args.out}')


if __name__ == '__main__':
    from mmtwoway.apis.cli import run_tool
    run_tool(main, 'plot_ap.py')
