"""Export a trained model, with its calibrated decision, to ONNX.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT \\
        --out model.onnx [--calibration FILE] [--opset N] \\
        [--cfg-options KEY=VALUE ...]

The ONNX model takes the image tensor after the config's preprocessing:
input ``"input"``, float32 ``(N, 3, H, W)`` with a dynamic batch size N,
the image decoded as OpenCV does, passed through the config's test pipeline
(e.g. short edge 256 and center crop 224: H = W = 224; a pipeline without
a fixed-size crop or resize, like the demo's, takes any H and W), in the
model's channel order (RGB when the data preprocessor has ``to_rgb``) and
normalised as ``(pixel - mean) / std``. Outputs: ``logits`` (float32
(N, C)) and, with a calibration file (``--calibration``, or the config's
``model.head.calibration``), ``labels`` (bool (N, C)), decided inside the
graph by the calibrated rule. The metadata holds the class names, the
decision rule and the preprocessing (mean, std, size, channel order, the
test pipeline). The tool prints which input the model expects, and checks
the file with onnxruntime against PyTorch before it returns.

Run it with onnxruntime: ``tools/predict.py --onnx model.onnx IMAGES...``
or the ten-line snippet of docs/deployment.md (onnxruntime, numpy and Pillow only).
Needs ``pip install -e ".[deploy]"``.
"""
import argparse
import os.path as osp
from typing import Dict, Optional, Sequence

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (registers the modules)
from mmengine.config import DictAction

from mmtwoway.apis import load_model, model_classes
from mmtwoway.apis.cli import run_tool
from mmtwoway.deployment import export_onnx


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a model (and its calibrated decision) to ONNX')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', required=True, help='the .onnx file to write')
    parser.add_argument(
        '--calibration',
        help='calibration file from tools/calibrate.py: its rule computes '
        'the "labels" output in the graph (default: the config\'s '
        'model.head.calibration, else logits only)')
    parser.add_argument(
        '--opset', type=int, help='ONNX opset (default: the exporter\'s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'test_dataloader.dataset.pipeline.1.scale=288')
    args = parser.parse_args(argv)
    if not args.out.lower().endswith('.onnx'):
        parser.error(f'--out must end with .onnx, got {args.out}')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    model = load_model(
        args.config,
        args.checkpoint,
        'cpu',
        calibration=args.calibration,
        cfg_options=args.cfg_options)
    summary = export_onnx(
        model,
        args.out,
        model_classes(model),
        source=dict(
            config=osp.abspath(args.config),
            checkpoint=osp.abspath(args.checkpoint)),
        opset=args.opset)
    print(f'Wrote {summary["out"]} (ONNX opset {summary["opset"]})')
    print(f'Input:   {summary["input"]}')
    print(f'Outputs: {", ".join(summary["outputs"])}')
    print(f'Labels:  {summary["decision"]}')
    print('Checked: onnxruntime vs PyTorch logits, max abs diff '
          f'{summary["max_abs_diff"]:.2e}')
    return summary


if __name__ == '__main__':
    run_tool(main, 'export_onnx.py')
