"""The loss benchmark's report: aggregation, plot and markdown block.

:func:`write_report` draws the per-epoch curves and replaces the block
between :data:`BEGIN` and :data:`END` in the report file, keeping the rest.
"""
import datetime
import os
import os.path as osp
import platform
import subprocess
from typing import Dict, List, Sequence

import numpy as np
import torch

from .settings import Setting

BEGIN = '<!-- loss_benchmark:begin -->'
END = '<!-- loss_benchmark:end -->'


def mean_std(values: Sequence[float]) -> str:
    """``mean ± std`` (sample std over seeds) with two decimals.

    Args:
        values (Sequence[float]): One value per seed.

    Returns:
        str: E.g. ``'2.00 ± 1.00'``; the std is nan for one value.
    """
    values = np.asarray(values, float)
    std = values.std(ddof=1) if len(values) > 1 else float('nan')
    return f'{values.mean():.2f} ± {std:.2f}'


def plot_curves(finetunes: Dict[str, List[dict]], path: str,
                title: str) -> None:
    """Both metrics per epoch for every loss: mean over seeds, ± std band.

    Args:
        finetunes (dict[str, list[dict]]): Loss -> per-seed results with
            a ``curve``.
        path (str): The PNG to write.
        title (str): Figure title.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, runs in finetunes.items():
        epochs = [c['epoch'] for c in runs[0]['curve']]
        for ax, metric in zip(axes, ('map_class', 'map_sample')):
            values = np.array([[c[metric] for c in r['curve']] for r in runs])
            mean, std = values.mean(0), values.std(0)
            lw = 2.6 if name == 'two-way' else 1.4
            ax.plot(epochs, mean, marker='o', ms=3, lw=lw, label=name)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.15)
    for ax, label in zip(axes, ('mAP@class (%)', 'mAP@sample (%)')):
        ax.set_xlabel('epoch')
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc='lower right')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_info(root: str) -> Dict[str, str]:
    """CPU/GPU model, cores, torch and commit, for the report.

    Args:
        root (str): The git checkout whose commit is reported.

    Returns:
        dict[str, str]: ``cpu``, ``device``, ``torch``, ``python`` and
        ``commit`` (``'unknown'`` outside a git checkout).
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [ln.split(':', 1)[1].strip() for ln in f
                     if ln.startswith('model name')]
        cpu = f'{names[0]} x{len(names)}' if names else cpu
    except OSError:
        pass
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f'CPU only, torch threads: {torch.get_num_threads()}')
    try:
        commit = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], cwd=root,
            capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = 'unknown'
    return dict(cpu=cpu, device=device, torch=torch.__version__,
                python=platform.python_version(), commit=commit or 'unknown')


def paired_deltas(finetunes: Dict[str, List[dict]], metric: str,
                  reference: str = 'two-way') -> Dict[str, str]:
    """``reference`` minus each loss, seed by seed (the runs of one seed
    share the backbone, the head initialisation and the batch order).

    Args:
        finetunes (dict[str, list[dict]]): Loss -> per-seed results.
        metric (str): ``'map_class'`` or ``'map_sample'``.
        reference (str): The loss the others are compared with.

    Returns:
        dict[str, str]: Loss -> ``mean ± std`` of the differences; empty
        without the reference.
    """
    if reference not in finetunes:
        return {}
    ref = {r['seed']: r[metric] for r in finetunes[reference]}
    deltas = {}
    for name, runs in finetunes.items():
        pairs = [ref[r['seed']] - r[metric] for r in runs if r['seed'] in ref]
        if name != reference and pairs:
            deltas[name] = mean_std(pairs)
    return deltas


def describe_backbone(setting: Setting) -> str:
    """One line about the network of ``setting``."""
    b = setting.backbone
    return (f'`{b["type"]}` depth {b.get("depth")}, width '
            f'{b.get("base_channels")}, stage strides '
            f'{tuple(b.get("strides", (1, 2, 2, 2)))} '
            f'({setting.feat_channels}-d features)')


def render(setting: Setting, mosaics: dict, pretrains: Dict[str, List[dict]],
           finetunes: Dict[str, List[dict]], missing: Dict[str, str],
           info: dict, plot_name: str) -> str:
    """The markdown of the results, markers included.

    Args:
        setting (Setting): The setting that was run.
        mosaics (dict): The mosaics' summary.
        pretrains (dict[str, list[dict]]): Head -> per-seed results.
        finetunes (dict[str, list[dict]]): Loss -> per-seed results.
        missing (dict[str, str]): Name -> why it was not run.
        info (dict): :func:`machine_info` with ``command`` and ``date``.
        plot_name (str): The plot's file name, relative to the report.

    Returns:
        str: The block, from :data:`BEGIN` to :data:`END`.
    """
    s = setting
    runs = [r for group in (pretrains, finetunes) for rs in group.values()
            for r in rs]
    loads = [r['load1'] for r in runs if 'load1' in r]
    stamps = sorted(r['finished'] for r in runs if 'finished' in r)
    load_line = (f'1-min load average when each run finished: '
                 f'{min(loads):.1f} to {max(loads):.1f} (median '
                 f'{np.median(loads):.1f}) on {os.cpu_count()} cores'
                 if loads else 'load average not recorded')
    lines = [
        BEGIN,
        f'<!-- generated by tools/benchmark/loss_benchmark.py '
        f'({s.name} setting); edit the code, not this block -->',
        '',
        f'Command: `{info["command"]}`  ',
        f'Date: {stamps[0] if stamps else "?"} to '
        f'{stamps[-1] if stamps else info["date"]} (runs finished); '
        f'{sum(r["seconds"] for r in runs) / 60:.1f} min of training and '
        f'evaluation in {len(runs)} runs, plus data preparation and linear '
        'probes.  ',
        f'Machine: {info["cpu"]}; {info["device"]}; torch {info["torch"]}, '
        f'Python {info["python"]}, commit {info["commit"]}.  ',
        f'{load_line}.',
        '',
        f'Setting `{s.name}`, {s.seeds} seeds. Backbone: '
        f'{describe_backbone(s)}.  ',
        f'Pretraining: {s.pretrain_images} Fashion-MNIST train images, '
        f'{s.pretrain_epochs} epochs, batch {s.pretrain_batch}, lr '
        f'{s.pretrain_lr}, from scratch; scored on {s.pretrain_test} test '
        'images.  ',
        f'Mosaics: {mosaics["train"]["images"]} train / '
        f'{mosaics["val"]["images"]} val, {s.canvas}x{s.canvas} px, items '
        f'{s.item_size[0]}-{s.item_size[1]} px, 1-{s.max_items} items, '
        f'class imbalance {s.imbalance:g}, '
        f'{mosaics["train"]["labels_per_image"]:.2f} / '
        f'{mosaics["val"]["labels_per_image"]:.2f} labels per image.  ',
        f'Fine-tuning: {s.epochs} epochs, batch {s.batch}, buckets of M = '
        f'{s.bucket}, SGD Nesterov momentum 0.9, weight decay '
        f'{s.weight_decay:g}, lr {s.lr:g} backbone / {10 * s.lr:g} '
        'classifier, cosine per iteration, AMP on GPU only; the same for '
        'every loss.',
        '',
        '### Multi-label fine-tuning (Table 7 in miniature)',
        '',
        f'Fashion-MNIST mosaics, last epoch, mean ± std over {s.seeds} '
        'seeds (%). "two-way minus": the paired difference to the two-way '
        'loss, seed by seed (positive: two-way is better).',
        '',
        '| loss | mAP@class | mAP@sample | two-way minus, @class | '
        'two-way minus, @sample | s / run |',
        '|---|---|---|---|---|---|',
    ]
    d_class = paired_deltas(finetunes, 'map_class')
    d_sample = paired_deltas(finetunes, 'map_sample')
    for name, runs_ in finetunes.items():
        lines.append(
            f'| {name} | {mean_std([r["map_class"] for r in runs_])} | '
            f'{mean_std([r["map_sample"] for r in runs_])} | '
            f'{d_class.get(name, "—")} | {d_sample.get(name, "—")} | '
            f'{np.mean([r["seconds"] for r in runs_]):.0f} |')
    for name in missing:
        if not name.startswith('pretrain '):
            lines.append(f'| {name} | not run | not run | — | — | — |')
    if missing:
        lines += [''] + [f'- {name}: not available here ({why}).'
                         for name, why in missing.items()]
    lines += [
        '',
        f'![mAP@class and mAP@sample per epoch]({plot_name})',
        '',
        '### Single-label pretraining and linear-probe transfer '
        '(Table 8 in miniature)',
        '',
        f'Top-1 accuracy (%), mean ± std over {s.seeds} seeds. '
        '"Fashion-MNIST" scores the pretrained classifier itself on test '
        'images; the digit columns fit a logistic regression on frozen '
        "pooled features of scikit-learn's digits (8x8 scans upscaled to "
        '28x28; fixed train / held-out split of the 1797 scans: 1198 / '
        f'599), with all train scans or {s.few_shot} per class.',
        '',
        f'| pretraining loss | Fashion-MNIST | digits, linear probe | '
        f'digits, {s.few_shot}-shot probe | s / run |',
        '|---|---|---|---|---|',
    ]
    for name, runs_ in pretrains.items():
        lines.append(
            f'| {name} | {mean_std([r["fashion_top1"] for r in runs_])} | '
            f'{mean_std([r["digits_probe"] for r in runs_])} | '
            f'{mean_std([r["digits_few_shot"] for r in runs_])} | '
            f'{np.mean([r["seconds"] for r in runs_]):.0f} |')
    seeds = sorted({r['seed'] for r in runs})
    lines += [
        '', 'Per seed (mAP@class / mAP@sample; top-1 / digits probe / '
        'few-shot probe):', '',
        '| run | ' + ' | '.join(f'seed {i}' for i in seeds) + ' |',
        '|---|' + '---|' * len(seeds)
    ]
    for name, runs_ in finetunes.items():
        by_seed = {r['seed']: r for r in runs_}
        lines.append(f'| fine-tune, {name} | ' + ' | '.join(
            f'{by_seed[i]["map_class"]:.2f} / {by_seed[i]["map_sample"]:.2f}'
            if i in by_seed else '—' for i in seeds) + ' |')
    for name, runs_ in pretrains.items():
        by_seed = {r['seed']: r for r in runs_}
        lines.append(f'| pretrain, {name} | ' + ' | '.join(
            f'{by_seed[i]["fashion_top1"]:.2f} / '
            f'{by_seed[i]["digits_probe"]:.2f} / '
            f'{by_seed[i]["digits_few_shot"]:.2f}'
            if i in by_seed else '—' for i in seeds) + ' |')
    lines += ['', END]
    return '\n'.join(lines)


DOC_HEADER = """# Benchmarks

Results of `tools/benchmark/loss_benchmark.py` (the paper's protocol in
miniature on Fashion-MNIST, offline).

"""


def write_doc(path: str, block: str) -> None:
    """Replace the generated block of ``path`` (create the file if needed),
    keeping everything outside the markers; a file without markers gets
    the block appended.

    Args:
        path (str): The markdown file.
        block (str): The new block, markers included.
    """
    text = DOC_HEADER + BEGIN + '\n' + END + '\n'
    if osp.isfile(path):
        with open(path) as f:
            text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:
        head, tail = text.rstrip('\n') + '\n\n', '\n'
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(head + block + tail)


def write_report(out: str, setting: Setting, results: dict, command: str,
                 root: str) -> str:
    """Write the plot beside ``out`` and the results block into ``out``.

    Args:
        out (str): The markdown report (created if needed).
        setting (Setting): The setting that was run.
        results (dict): From :func:`~.training.run_all`.
        command (str): The command line, shown in the report.
        root (str): The repository, for the commit in the report.

    Returns:
        str: Path of the plot (``<out stem>_curves.png`` beside ``out``).
    """
    plot_name = osp.splitext(osp.basename(out))[0] + '_curves.png'
    plot_path = osp.join(osp.dirname(osp.abspath(out)), plot_name)
    plot_curves(results['finetune'], plot_path,
                f'Fashion-MNIST mosaics, {setting.name} setting: mean ± std '
                f'over {setting.seeds} seeds')
    info = machine_info(root)
    info.update(command=command,
                date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'))
    write_doc(out, render(setting, results['mosaics'], results['pretrain'],
                          results['finetune'], results['missing'], info,
                          plot_name))
    return plot_path
