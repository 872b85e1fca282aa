"""Statistics of a config's train and test sets (the paper's Table 6).

    python tools/misc/dataset_stats.py CONFIG [--cfg-options KEY=VALUE ...]
        [--splits train test] [--out stats.json] [--max-list 20]

For each split it builds the dataset of ``<split>_dataloader`` (without its
pipeline: no image is decoded) and prints

* the Table 6 row: classes, samples, mean positive labels per sample;
* per class, the positives, negatives and ignored entries as the loss
  (train) and the metric (test) see them: train targets follow mmtwoway's
  ignored-label convention with difficult-only VOC classes as the dataset
  gives them; test targets are those of the config's ``MultiLabelMAP``
  (difficult-only classes ignored by default);
* the images that could not be found (the datasets are built with
  ``missing_images='skip'``, or ``check_images=False`` for
  ``CocoMultiLabel``, so that missing files are reported, not fatal) and
  every other record the dataset skipped, with the reason.

When the splits index different classes (e.g. a CSV split whose class
list is its own sorted names), it shows the class lists side by side.

Exit status: 0, or 1 when not a single image of a split is found (a wrong
``data_root`` or ``data_prefix``; after the report is printed and written)
or a dataset cannot be built (one line naming the file), 2 on a usage
error.

The first run on VAW, VISPR and WIDER Attribute also builds the datasets'
caches (``<data_root>/.mmtwoway_cache/``), so running this tool once before
a multi-GPU job spares every rank from parsing the original files.
"""
import argparse
import copy
import inspect
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (registers the modules)
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from mmtwoway.apis.cli import run_tool
from mmtwoway.datasets.images import find_missing
from mmtwoway.evaluation import MultiLabelMAP

# Samples handed to the metric at a time (bounds the memory of targets).
_CHUNK = 4096
# Reason under which mmtwoway datasets record missing images.
_MISSING_REASON = 'skipped, image not found'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Table 6 statistics of a config\'s datasets')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'test'],
        choices=['train', 'val', 'test'],
        help='dataloaders to inspect (default: train test)')
    parser.add_argument('--out', help='also write the statistics as JSON')
    parser.add_argument(
        '--max-list',
        type=int,
        default=20,
        help='missing images / skipped records listed per split')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.dataset.data_root=/data/vaw')
    return parser.parse_args(argv)


def tolerant_dataset_cfg(dataset_cfg: dict) -> dict:
    """The dataset config with no pipeline and missing images tolerated.

    Args:
        dataset_cfg (dict): A ``<split>_dataloader.dataset`` config.

    Returns:
        dict: A copy that builds without decoding images and without
        failing on missing ones.
    """
    cfg = copy.deepcopy(dataset_cfg)
    cfg['pipeline'] = []
    dataset_cls = DATASETS.get(cfg['type'])
    if dataset_cls is None:
        raise KeyError(f'dataset type {cfg["type"]!r} is not registered; is '
                       'mmtwoway imported by the config?')
    params = inspect.signature(dataset_cls.__init__).parameters
    if 'check_images' in params:  # CocoMultiLabel: the tool checks itself
        cfg['check_images'] = False
    elif 'missing_images' in params:
        cfg['missing_images'] = 'skip'
    return cfg


def metric_for(cfg: Config, split: str) -> MultiLabelMAP:
    """The metric whose targets define positives / negatives / ignored.

    The train split uses the loss's view (difficult-only classes are what
    the dataset makes them: ``gt_label_difficult`` alone never reaches the
    loss); the other splits use the config's ``MultiLabelMAP`` settings.
    """
    if split == 'train':
        return MultiLabelMAP(difficult_as='negative')
    evaluator = cfg.get(f'{split}_evaluator') or {}
    evaluators = evaluator if isinstance(evaluator, list) else [evaluator]
    for ev in evaluators:
        if ev.get('type') == 'MultiLabelMAP':
            return MultiLabelMAP(difficult_as=ev.get('difficult_as', 'ignore'))
    return MultiLabelMAP()


def split_stats(dataset, metric: MultiLabelMAP) -> dict:
    """Table 6 numbers, per-class counts, missing images and skips.

    Args:
        dataset: A built dataset (no pipeline needed).
        metric (MultiLabelMAP): Defines the target of each sample.

    Returns:
        dict: ``classes, samples, labels_per_sample, per_class`` (name ->
        positives / negatives / ignored), ``missing_images`` and
        ``skipped`` (reason -> records).
    """
    if hasattr(dataset, 'label_counts'):  # a CSR label index
        return indexed_split_stats(dataset)
    names = list(dataset.metainfo['classes'])
    num_classes = len(names)
    counts = {
        key: torch.zeros(num_classes, dtype=torch.long)
        for key in ('positives', 'negatives', 'ignored')
    }
    paths = []
    for start in range(0, len(dataset), _CHUNK):
        metric.results.clear()
        samples = []
        for idx in range(start, min(start + _CHUNK, len(dataset))):
            info = dataset.get_data_info(idx)
            paths.append(info['img_path'])
            sample = dict(pred_score=torch.zeros(num_classes))
            for key in ('gt_label', 'gt_score', 'gt_label_difficult'):
                if info.get(key) is not None:
                    sample[key] = info[key]
            samples.append(sample)
        metric.process(None, samples)
        targets = torch.stack([r['target'] for r in metric.results])
        counts['positives'] += (targets > 0).sum(0)
        counts['negatives'] += (targets == 0).sum(0)
        counts['ignored'] += (targets < 0).sum(0)
    metric.results.clear()

    skipped = getattr(dataset, 'skipped', None)
    skipped = skipped.as_dict() if skipped is not None else {}
    # Datasets without the skip policy (CocoMultiLabel) keep every sample:
    # check their files here.
    not_found = find_missing(paths)
    missing = skipped.pop(_MISSING_REASON, []) + sorted(not_found)
    samples = len(dataset)
    # CSV rows that name no class at all (an empty "labels" cell): each is
    # an all-negative (or all-unknown) sample, rarely what was meant.
    unlabelled = getattr(dataset, 'unlabelled_lines', None) or []
    return dict(
        classes=num_classes,
        class_names=names,
        unlabelled_rows=list(unlabelled),
        samples=samples,
        images_found=len(set(paths) - not_found),
        labels_per_sample=(float(counts['positives'].sum())
                           / samples if samples else 0.0),
        per_class={
            name: {
                key: int(c[i])
                for key, c in counts.items()
            }
            for i, name in enumerate(names)
        },
        missing_images=missing,
        skipped=skipped)


def indexed_split_stats(dataset) -> dict:
    """:func:`split_stats` of a dataset with a label index (Open Images).

    The counts come from the index itself (millions of samples are not
    expanded one by one), and the report adds the index: its folder, its
    size and the parsing statistics (duplicate rows merged, conflicting
    verified 1 / 0 pairs made ignored, rows left out).

    Args:
        dataset: A dataset with ``label_counts()`` and ``index_info()``.

    Returns:
        dict: The keys of :func:`split_stats` plus ``index``.
    """
    names = list(dataset.metainfo['classes'])
    counts = dataset.label_counts()
    skipped = dataset.skipped.as_dict()
    missing = skipped.pop(_MISSING_REASON, [])
    samples = len(dataset)
    return dict(
        classes=len(names),
        class_names=names,
        unlabelled_rows=[],
        samples=samples,
        images_found=samples,
        labels_per_sample=(float(counts['positives'].sum()) /
                           samples if samples else 0.0),
        per_class={
            name: {key: int(c[i]) for key, c in counts.items()}
            for i, name in enumerate(names)
        },
        missing_images=missing,
        skipped=skipped,
        index=dataset.index_info())


def format_report(stats: Dict[str, dict], max_list: int) -> str:
    """The printed report of :func:`split_stats` for every split."""
    lines = [
        'Table 6 row:', f'{"split":<6} {"classes":>8} {"samples":>9} '
        f'{"labels/sample":>14} {"images not found":>17}'
    ]
    for split, s in stats.items():
        lines.append(f'{split:<6} {s["classes"]:>8} {s["samples"]:>9,} '
                     f'{s["labels_per_sample"]:>14.2f} '
                     f'{len(s["missing_images"]):>17,}')
    splits = list(stats)
    lines += _class_list_lines(stats)
    names = list(stats[splits[0]]['per_class'])
    width = max(len('class'), *(len(n) for n in names))
    header = f'{"idx":>4} {"class":<{width}}'
    for split in splits:
        header += f' | {split + " pos":>10} {"neg":>9} {"ignored":>9}'
    lines += ['', 'Per class (positives / negatives / ignored):', header]
    for i, name in enumerate(names):
        row = f'{i:>4} {name:<{width}}'
        for split in splits:
            c = stats[split]['per_class'].get(name)
            row += (f' | {c["positives"]:>10,} {c["negatives"]:>9,} '
                    f'{c["ignored"]:>9,}' if c else ' | (not a class here)')
        lines.append(row)
    for split, s in stats.items():
        if 'index' in s:  # datasets with a label index (Open Images)
            index = s['index']
            folder = index['folder'] or '(in memory)'
            lines += ['', f'{split}: label index {folder}, '
                      f'{index["bytes"] / 2**20:.1f} MiB:']
            lines += [f'  {k}: {v}' for k, v in index['stats'].items()]
        lines += [
            '', f'{split}: {len(s["missing_images"])} image(s) not '
            'found' + (':' if s['missing_images'] else '.')
        ]
        lines += [f'  {p}' for p in s['missing_images'][:max_list]]
        if len(s['missing_images']) > max_list:
            lines.append(f'  ... ({len(s["missing_images"]) - max_list} '
                         'more; see --out)')
        if s.get('unlabelled_rows'):
            rows = s['unlabelled_rows']
            lines.append(f'{split}: {len(rows)} row(s) name no class (an '
                         'empty "labels" cell: every class negative, or '
                         'unknown with a "negatives" column), CSV lines: ' +
                         ', '.join(map(str, rows[:max_list])) +
                         (' ...' if len(rows) > max_list else ''))
        for reason, records in s['skipped'].items():
            lines.append(f'{split}: {len(records)} record(s) {reason}:')
            lines += [f'  {r}' for r in records[:max_list]]
            if len(records) > max_list:
                lines.append(f'  ... ({len(records) - max_list} more)')
    return '\n'.join(lines)


def _class_list_lines(stats: Dict[str, dict]) -> List[str]:
    """The per-split class lists, index by index, when they differ.

    The per-class table matches classes by name, which would hide that one
    index means different classes in two splits.
    """
    lists = {split: s['class_names'] for split, s in stats.items()}
    if len({tuple(names) for names in lists.values()}) <= 1:
        return []
    splits = list(lists)
    lines = [
        '', 'WARNING: the splits have different class lists, so a class '
        'index means different classes in them (set one `classes` list, or '
        '`classes_from` for a CSV dataset):',
        f'{"idx":>4} ' + ' | '.join(f'{split:<20}' for split in splits)
    ]
    for i in range(max(len(names) for names in lists.values())):
        cells = [names[i] if i < len(names) else '-'
                 for names in lists.values()]
        mark = '' if len(set(cells)) == 1 else '  <- differs'
        lines.append(f'{i:>4} ' + ' | '.join(f'{c:<20}' for c in cells) +
                     mark)
    return lines


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))

    stats = {}
    for split in args.splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            raise ValueError(f'{args.config} has no {split}_dataloader.'
                             'dataset; choose other --splits.')
        dataset = DATASETS.build(tolerant_dataset_cfg(loader['dataset']))
        stats[split] = split_stats(dataset, metric_for(cfg, split))
    print(format_report(stats, args.max_list))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(stats, f, indent=1)
        print(f'\nWrote {osp.abspath(args.out)}')
    empty = [
        split for split, s in stats.items()
        if s['missing_images'] and not s['images_found']
    ]
    if empty:
        splits = ', '.join(
            f'{split} split ({len(stats[split]["missing_images"])} missing)'
            for split in empty)
        sys.exit(f'dataset_stats.py: error: no image of the {splits} was '
                 'found. Check data_root and data_prefix (--cfg-options '
                 '<split>_dataloader.dataset.data_root=/path).')
    return stats


if __name__ == '__main__':
    run_tool(main, 'dataset_stats.py')
