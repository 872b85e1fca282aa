"""Calibrate how a model turns its scores into label sets.

    python tools/calibrate.py CONFIG CHECKPOINT [--out FILE] [--split val]
                              [--rule thresholds|relative]

Runs the model over the config's validation set (``val_dataloader``; or
``--split test``), fits the per-class F1-maximising thresholds and the
"within delta of the top score" margin (see ``docs/decisions.md``), prints
what each rule reaches there (``sigmoid > 0.5`` and top-1 for comparison)
and writes a calibration file (default ``<checkpoint>.calibration.json``)
that the model then uses::

    python tools/test.py CONFIG CHECKPOINT \\
        --cfg-options model.head.calibration=FILE
    python tools/predict.py CONFIG CHECKPOINT IMAGES... --thresholds FILE

The F1s printed are measured on the set the rules were fitted on, so they
are optimistic; evaluate on a separate test set for an unbiased number.
"""
import argparse
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (registers the modules)
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.utils import track

from mmtwoway.apis import load_model, model_classes
from mmtwoway.apis.cli import add_model_arguments, run_tool
from mmtwoway.evaluation import average_precision, mean_ap
from mmtwoway.evaluation.decision import (OVERALL_KEYS, calibrate_delta,
                                          calibrate_thresholds,
                                          check_class_names,
                                          label_set_scores, relative_labels,
                                          save_calibration, threshold_labels,
                                          topk_labels)
from mmtwoway.structures import batch_dicts, batch_scores, metric_target


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Fit per-class thresholds (and the relative rule) on a '
        'validation set and write a calibration file')
    add_model_arguments(parser, decision=False)
    parser.add_argument(
        '--out',
        help='calibration file to write (default: the checkpoint path with '
        '.calibration.json instead of .pth)')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='which dataloader of the config to calibrate on (default val)')
    parser.add_argument(
        '--rule',
        choices=['thresholds', 'relative'],
        default='thresholds',
        help='the rule the file selects (both are fitted and stored; '
        'default: per-class thresholds)')
    parser.add_argument(
        '--difficult-as',
        choices=['ignore', 'negative', 'positive'],
        default='ignore',
        help='what a gt_label_difficult class becomes (default ignore)')
    return parser.parse_args(argv)


@torch.no_grad()
def collect(model: torch.nn.Module, loader: torch.utils.data.DataLoader,
            difficult_as: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """The scores and targets of every sample of ``loader``.

    Args:
        model: The model, in eval mode.
        loader: The dataloader of the calibration set.
        difficult_as: Target of a ``gt_label_difficult`` class.

    Returns:
        tuple: (N, C) float scores (the head's ``pred_score``) and (N, C)
        int8 targets (1 / 0 / -1 ignored).
    """
    scores: List[torch.Tensor] = []
    targets: List[torch.Tensor] = []
    for batch in track(loader, 'Calibration set', total=len(loader)):
        samples = batch_dicts(model.test_step(batch))
        if not samples:
            continue
        # One copy to the CPU per batch, before any indexing.
        score = torch.stack(batch_scores(samples))
        scores.append(score)
        targets.append(metric_target(samples, score.shape[1], difficult_as))
    if not scores:
        raise ValueError('the calibration set is empty')
    return torch.cat(scores), torch.cat(targets)


def fit_and_measure(scores: torch.Tensor, targets: torch.Tensor,
                    rule: str) -> Dict:
    """Fit both rules and measure every rule on the same samples.

    Args:
        scores: (N, C) scores.
        targets: (N, C) targets, ``< 0`` ignored.
        rule: The rule whose per-class values go to ``per_class``.

    Returns:
        dict: ``thresholds``, ``delta`` and the ``validation`` record of
        the calibration file.
    """
    fitted = calibrate_thresholds(scores, targets)
    delta, _ = calibrate_delta(scores, targets)
    decided = {
        # What a BCE habit would do: meaningless for two-way logits.
        'sigmoid>0.5': threshold_labels(scores, 0.),
        'top-1': topk_labels(scores, 1),
        'thresholds': threshold_labels(scores, fitted.thresholds),
        'relative': relative_labels(scores, delta),
    }
    measured = {name: label_set_scores(mask, targets)
                for name, mask in decided.items()}
    chosen = measured[rule]
    validation = {
        'num_samples': int(scores.shape[0]),
        'mAP@class': float(mean_ap(scores, targets, 'class')),
        'mAP@sample': float(mean_ap(scores, targets, 'sample')),
        'rules': {name: m.overall for name, m in measured.items()},
        'per_class': {
            'ap': (average_precision(scores, targets, dim=0) * 100).tolist(),
            'num_positives': chosen.num_positives.tolist(),
            'precision': chosen.precision.tolist(),
            'recall': chosen.recall.tolist(),
            'f1': chosen.f1.tolist(),
        },
    }
    return dict(thresholds=fitted.thresholds, delta=delta,
                validation=validation)


def report(result: Dict, classes: Sequence[str], rule: str,
           out: str) -> str:
    """The summary printed at the end (a table of the rules)."""
    val = result['validation']
    lines = [
        f'{val["num_samples"]} samples: mAP@class {val["mAP@class"]:.2f}, '
        f'mAP@sample {val["mAP@sample"]:.2f}',
        f'{"rule":<12}' + ''.join(f'{k:>8}' for k in OVERALL_KEYS)
    ]
    for name, overall in val['rules'].items():
        mark = ' <- written' if name == rule else ''
        lines.append(f'{name:<12}' +
                     ''.join(f'{overall[k]:8.2f}' for k in OVERALL_KEYS) +
                     mark)
    lines.append(f'relative rule: delta = {result["delta"]:.4f}')
    never = [
        c for c, t in zip(classes, result['thresholds'].tolist())
        if t == float('inf')
    ]
    if never:
        lines.append(f'{len(never)} class(es) without a positive in the '
                     f'calibration set are never predicted: {never}')
    lines.append(f'calibration file: {out}')
    lines.append('use it: --cfg-options model.head.calibration=' + out +
                 ' (tools/test.py, train/val configs) or --thresholds ' +
                 out + ' (tools/predict.py, tools/visualize.py)')
    return '\n'.join(lines)


def main(argv: Sequence[str] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    # Only what the dataloader needs on this machine (no training here, so
    # none of train.py's notes about the optimizer).
    loader_cfg = cfg.get(f'{args.split}_dataloader')
    if not loader_cfg:
        raise ValueError(f'{args.config} has no {args.split}_dataloader to '
                         'calibrate on; choose another --split.')
    if not torch.cuda.is_available():
        loader_cfg.pin_memory = False
    if loader_cfg.get('num_workers', 0) == 0:
        loader_cfg.persistent_workers = False
    out = args.out or osp.splitext(args.checkpoint)[0] + '.calibration.json'
    # Scores are what is calibrated: the head's current decision (perhaps
    # a calibration file not written yet) plays no part.
    model = load_model(cfg, args.checkpoint, args.device, calibration=False)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    loader = Runner.build_dataloader(loader_cfg)
    classes = loader.dataset.metainfo.get('classes')
    check_class_names(
        getattr(model, '_dataset_meta', {}).get('classes'), classes,
        f'checkpoint {args.checkpoint} ', f'the {args.split} set')
    classes = classes or model_classes(model)
    scores, targets = collect(model, loader, args.difficult_as)
    result = fit_and_measure(scores, targets, args.rule)
    result['validation'].update(
        split=args.split, config=args.config, checkpoint=args.checkpoint)
    save_calibration(out, classes, result['thresholds'], result['delta'],
                     args.rule, result['validation'])
    print(report(result, classes, args.rule, out))


if __name__ == '__main__':
    run_tool(main, 'calibrate.py')
