"""Convert a torchvision ImageNet checkpoint to mmpretrain's key names.

    python tools/model_converters/torchvision_to_mmpretrain.py SRC DST

SRC: a torchvision ResNet-50 / ResNeXt-50 / DenseNet-169 / RegNet state
dict (a local .pth or a URL such as
https://download.pytorch.org/models/resnet50-0676ba61.pth). DST receives
``{'state_dict': {'backbone.<key>': ...}, 'meta': ...}``, the layout of an
mmpretrain classifier checkpoint, so any mmtwoway config loads it with
``--cfg-options model.backbone.init_cfg.checkpoint=DST``. The classifier
is left out. Configs can also convert while loading, with
``checkpoint='from-torchvision://SRC'`` (no file to write).
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (the from-torchvision scheme)
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from mmtwoway.models.backbones import convert_torchvision_state_dict


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Rename a torchvision checkpoint to mmpretrain keys')
    parser.add_argument('src', help='torchvision checkpoint: path or URL')
    parser.add_argument('dst', help='output .pth path')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    source = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    state, dropped = convert_torchvision_state_dict(source)
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save(
        dict(state_dict=state,
             meta=dict(converted_from=args.src, dropped=dropped)), args.dst)
    print(f'{args.dst}: {len(state)} tensors in mmpretrain backbone keys '
          f'(dropped the classifier: {", ".join(dropped) or "none"}).')


if __name__ == '__main__':
    main()
