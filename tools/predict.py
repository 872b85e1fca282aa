"""Predict the labels of images with a trained model.

    python tools/predict.py CONFIG CHECKPOINT IMAGE_OR_FOLDER... \\
        [--out results.json|results.csv] [--thresholds FILE | --topk K]
    python tools/predict.py --onnx model.onnx IMAGE_OR_FOLDER... \\
        [--out results.json|results.csv] [--thresholds FILE | --topk K]

Prints one line per image, ``path: label (score), ...`` (scores are the
head's logits), and writes every image's labels and class scores to
``--out`` as JSON or CSV (chosen by the extension; the CSV's ``labels``
cell joins names with ``|``, as the training CSVs do). Folders are searched
recursively for the image files the decoder reads (``IMAGE_EXTENSIONS``).
Labels come from the model's decision: the calibration file given by
``--thresholds`` (written by ``tools/calibrate.py``), else the config's
``model.head.calibration``/``thr``, else top-k, which the tool then says
is uncalibrated.

The images run through the config's test pipeline; images that come out of
it in different sizes (a pipeline without a fixed-size crop) are batched by
size. With ``--onnx`` (a model from ``tools/deployment/export_onnx.py``)
they run through onnxruntime instead, after the same pipeline (recorded in
the model's metadata), and the labels are the graph's ``labels`` output
(its calibrated rule) unless ``--thresholds`` or ``--topk`` is given; the
output has the same format.

Exit status, on both paths: 0 when every image was predicted; 3
(``EXIT_UNREADABLE``) when some could not be read (empty, truncated, not an
image): the others are predicted and written, and a warning on stderr lists
the skipped files with the reason; 1 on an error (a missing file, a
checkpoint that does not fit, no readable image at all); 2 on a usage
error.
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (registers the modules)
from mmtwoway.apis import model_classes, predict_readable
from mmtwoway.datasets.csv_dataset import SEPARATOR
from mmtwoway.apis.cli import (add_model_arguments, describe_decision,
                               model_from_args, run_tool)
from mmtwoway.utils.misc import listing

# Exit status when some images could not be read (the rest were written).
EXIT_UNREADABLE = 3

# What the decoder (OpenCV through mmcv) reads, as folder scans find it.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.bmp',
                    '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm',
                    '.pbm')


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    # Two forms: CONFIG CHECKPOINT IMAGES... or --onnx MODEL IMAGES...; the
    # first pass only finds out which.
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument('--onnx')
    onnx = first.parse_known_args(argv)[0].onnx is not None
    parser = argparse.ArgumentParser(
        description='Print (and save) the labels a model predicts for '
        'images',
        usage='%(prog)s CONFIG CHECKPOINT IMAGE... [options]\n'
        '       %(prog)s --onnx MODEL.onnx IMAGE... [options]')
    if onnx:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            '--thresholds',
            help='calibration file from tools/calibrate.py (overrides the '
            "model's decision)")
        group.add_argument(
            '--topk', type=int, help='predict the K best classes per image')
    else:
        add_model_arguments(parser)
    parser.add_argument(
        '--onnx',
        help='run this ONNX model (from tools/deployment/export_onnx.py) '
        'with onnxruntime instead of CONFIG CHECKPOINT')
    parser.add_argument(
        'inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument(
        '--out', help='write all predictions to this .json or .csv file')
    parser.add_argument(
        '--batch-size', type=int, default=8, help='images per forward pass')
    args = parser.parse_args(argv)
    if args.out and not args.out.lower().endswith(('.json', '.csv')):
        parser.error(f'--out must end with .json or .csv, got {args.out}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def find_images(inputs: Sequence[str]) -> List[str]:
    """The image files named by ``inputs`` (files, or folders searched).

    Args:
        inputs: Paths of image files or folders.

    Returns:
        list[str]: Files as given, each folder's images sorted, every
        path once.

    Raises:
        FileNotFoundError: A path does not exist or a folder has no image.
    """
    images = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(
                osp.join(root, name)
                for root, _, names in os.walk(path) for name in names
                if name.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise FileNotFoundError(
                    f'folder {path} has no image file '
                    f'({", ".join(IMAGE_EXTENSIONS)})')
            images.extend(found)
        elif osp.isfile(path):
            images.append(path)
        else:
            raise FileNotFoundError(f'image {path} does not exist')
    # An image named twice (alone and in its folder) is predicted once.
    return list(dict.fromkeys(images))


def write(out: str, results: List[Dict], classes: List[str],
          header: Dict) -> None:
    """Write the predictions as JSON (with ``header``) or CSV."""
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if out.lower().endswith('.json'):
        with open(out, 'w', encoding='utf-8') as f:
            json.dump(dict(header, predictions=results), f, indent=1)
        return
    with open(out, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'labels'] + list(classes))
        for r in results:
            writer.writerow([r['image'], SEPARATOR.join(r['labels'])] +
                            [f'{s:.6g}' for s in r['scores']])


def main(argv: Sequence[str] = None) -> Optional[int]:
    """Predict, print and write; return ``EXIT_UNREADABLE`` if images were
    skipped, else None.

    Raises:
        FileNotFoundError, ValueError: Missing inputs, a checkpoint that
            does not fit, or no readable image at all.
    """
    args = parse_args(argv)
    images = find_images(args.inputs)
    if args.onnx:
        # Imported here: the PyTorch path does not need onnxruntime.
        from mmtwoway.deployment import OnnxClassifier
        runner = OnnxClassifier(args.onnx, args.thresholds, args.topk)
        classes, rule = runner.classes, runner.decision
        decision = runner.describe()
        source = runner.meta['source']
        header = dict(config=source.get('config'),
                      checkpoint=source.get('checkpoint'), onnx=args.onnx)
    else:
        model = model_from_args(args)
        classes = model_classes(model)
        rule = getattr(model.head, 'decision', None)
        decision = describe_decision(model)
        header = dict(config=args.config, checkpoint=args.checkpoint)
    print(f'Labels: {decision}')
    if rule is not None and rule.rule == 'topk' and args.topk is None:
        where = ('export the model with --calibration FILE' if args.onnx
                 else 'set model.head.calibration')
        print('No calibration file is set: the labels are the top-'
              f'{rule.k} classes, not a calibrated decision. Run '
              f'tools/calibrate.py and pass --thresholds FILE (or {where}).')
    if args.onnx:
        results, unreadable = runner.predict_readable(images,
                                                      args.batch_size)
    else:
        results, unreadable = predict_readable(model, images,
                                               args.batch_size)
    if unreadable and not results:
        raise ValueError(
            f'none of the {len(images)} image(s) can be read: ' +
            listing(unreadable, 5, '; '))
    for r in results:
        labels = ', '.join(f'{name} ({score:.3f})' for name, score in zip(
            r['labels'], r['label_scores']))
        print(f'{r["image"]}: {labels or "(no label)"}')
    if args.out:
        write(args.out, results, classes,
              dict(header, decision=decision, classes=classes))
        print(f'{len(results)} predictions written to {args.out}')
    if unreadable:
        listed = '\n'.join(f'  {err.path}: {err.reason}'
                           for err in unreadable)
        print(f'predict.py: warning: skipped {len(unreadable)} of '
              f'{len(images)} image(s) that cannot be read (exit status '
              f'{EXIT_UNREADABLE}):\n{listed}', file=sys.stderr)
        return EXIT_UNREADABLE
    return None


if __name__ == '__main__':
    run_tool(main, 'predict.py')
