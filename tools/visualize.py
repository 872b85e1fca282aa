"""Draw an image with its predicted (and ground-truth) labels, as a PNG.

    python tools/visualize.py CONFIG CHECKPOINT IMAGE --out out.png \\
        [--gt-json instances.json] [--thresholds FILE | --topk K]

The picture shows the image (small images are enlarged without smoothing)
and, beside it, the predicted labels with their scores and the rule that
decided them. With ``--gt-json`` (a COCO instances file that lists the image
under its file name, such as the dataset's annotation file) the true labels
are drawn too: correct predictions in green, wrong ones in red, missed true
labels in orange.
"""
import argparse
import os
import os.path as osp
import textwrap
from typing import List, Optional, Sequence

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (registers the modules)
from mmtwoway.apis import model_classes, predict_images
from mmtwoway.apis.cli import (add_model_arguments, describe_decision,
                               model_from_args, run_tool)
from mmtwoway.evaluation.decision import check_class_names

CORRECT, WRONG, MISSED, PLAIN = '#1a7f37', '#cf222e', '#d4760a', '#222222'
# Images smaller than this (longer side, pixels) are enlarged to it.
MIN_SIDE = 320


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Save an image with its predicted and true labels')
    add_model_arguments(parser)
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', required=True, help='output PNG file')
    parser.add_argument(
        '--gt-json',
        help='COCO instances json that lists the image (by file name); its '
        'labels are drawn as the ground truth')
    args = parser.parse_args(argv)
    if not args.out.lower().endswith('.png'):
        parser.error(f'--out must be a .png file, got {args.out}')
    return args


def ground_truth(ann_file: str, image: str,
                 classes: Sequence[str]) -> List[str]:
    """The labels of ``image`` in a COCO instances file.

    Args:
        ann_file: The COCO json.
        image: The image path; it is matched by file name.
        classes: The model's class names, which the file's categories must
            equal.

    Returns:
        list[str]: The image's class names.

    Raises:
        ValueError: The file has other classes, or does not list the image
            (or lists it without annotation).
    """
    from mmtwoway.datasets import CocoMultiLabel
    # The dataset's own messages speak of config keys (data_root,
    # ann_file); here the file comes from the command line.
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'--gt-json {ann_file} does not exist; give the COCO instances '
            'JSON that lists the image (e.g. '
            'data/demo/annotations/instances_val.json).')
    try:
        dataset = CocoMultiLabel(
            ann_file=ann_file, data_prefix='', check_images=False)
    except ValueError as err:
        reason = str(err).replace('CocoMultiLabel: ', '', 1)
        raise ValueError(f'--gt-json {ann_file}: {reason}') from None
    check_class_names(dataset.metainfo['classes'], classes,
                      f'--gt-json {ann_file} ', 'the model')
    name = osp.basename(image)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if osp.basename(info['img_path']) == name:
            return [classes[c] for c in info['gt_label']]
    raise ValueError(f'--gt-json {ann_file} has no annotated image named '
                     f'{name}')


def draw(image_path: str, labels: List[str], scores: List[float],
         truth: Optional[List[str]], decision: str, out: str) -> None:
    """Save the image with its labels beside it as a PNG.

    Args:
        image_path: The image.
        labels: Predicted class names, best first.
        scores: Their scores.
        truth: True class names, or None when unknown.
        decision: How the labels were decided (a line of text).
        out: The PNG to write.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image

    with Image.open(image_path) as img:
        pixels = img.convert('RGB')
    truth_set = set(truth or ())
    lines = [('Predicted', PLAIN, 'bold')]
    for name, score in zip(labels, scores):
        color = PLAIN if truth is None else (
            CORRECT if name in truth_set else WRONG)
        mark = '' if truth is None else ('  ok' if name in truth_set else
                                         '  wrong')
        lines.append((f'  {name}  {score:.2f}{mark}', color, 'normal'))
    if not labels:
        lines.append(('  (none)', PLAIN, 'normal'))
    if truth is not None:
        lines.append(('', PLAIN, 'normal'))
        lines.append(('Ground truth', PLAIN, 'bold'))
        predicted = set(labels)
        for name in truth:
            found = name in predicted
            lines.append((f'  {name}{"" if found else "  missed"}',
                          CORRECT if found else MISSED, 'normal'))
    lines.append(('', PLAIN, 'normal'))
    for part in textwrap.wrap(f'Labels: {decision}', 38):
        lines.append((part, '#57606a', 'normal'))

    width, height = pixels.size
    # Enough room for the text column whatever the image size.
    fig_h = max(4.0, 0.28 * len(lines) + 0.8)
    fig_w = fig_h * width / height + 4.2
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=100)
    img_ax = fig.add_axes([0.02, 0.04, (fig_w - 4.4) / fig_w, 0.88])
    img_ax.imshow(
        pixels,
        interpolation='nearest' if max(width, height) < MIN_SIDE else
        'antialiased')
    img_ax.set_axis_off()
    img_ax.set_title(osp.basename(image_path), fontsize=11)
    text_ax = fig.add_axes([1 - 4.2 / fig_w, 0.04, 4.1 / fig_w, 0.9])
    text_ax.set_axis_off()
    step = 1 / max(len(lines), 14)
    for i, (text, color, weight) in enumerate(lines):
        text_ax.text(0, 1 - i * step, text, color=color, fontweight=weight,
                     fontsize=11, va='top', family='DejaVu Sans')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, format='png')
    plt.close(fig)


def main(argv: Sequence[str] = None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'image {args.image} does not exist')
    model = model_from_args(args)
    classes = model_classes(model)
    truth = (
        ground_truth(args.gt_json, args.image, classes)
        if args.gt_json else None)
    # Decodes the image first: an unreadable one is an error naming it.
    pred = predict_images(model, [args.image], batch_size=1)[0]
    draw(args.image, pred['labels'], pred['label_scores'], truth,
         describe_decision(model), args.out)
    print(f'{args.image}: predicted {pred["labels"]}' +
          ('' if truth is None else f', true {truth}') +
          f'; saved {args.out}')


if __name__ == '__main__':
    run_tool(main, 'visualize.py')
