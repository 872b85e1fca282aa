"""torchvision ImageNet checkpoints in mmpretrain's key names."""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

SCHEME = 'from-torchvision://'

# Families told apart by a key only that family has.
_FAMILY_MARKERS = (
    ('densenet', 'features.conv0.weight'),
    ('regnet', 'trunk_output.'),
    ('resnet', 'layer1.0.conv1.weight'),
)
_CLASSIFIER = re.compile(r'^(fc|classifier)\.')
_RESNET_KEY = re.compile(r'^(conv1|bn1|layer[1-4])\.')
_REGNET_KEY = re.compile(r'^(stem|trunk_output)\.')
_DENSE_LAYER = re.compile(r'^features\.denseblock(\d+)\.denselayer(\d+)\.'
                          r'(norm|conv)\.?([12])\.(.+)$')
_DENSE_TRANSITION = re.compile(r'^features\.transition(\d+)\.(norm|conv)\.'
                               r'(.+)$')
_DENSE_STEM = {'features.conv0.': 'stem.0.', 'features.norm0.': 'stem.1.'}


def detect_family(keys) -> str:
    """``'resnet'`` (also ResNeXt), ``'densenet'`` or ``'regnet'``."""
    keys = list(keys)
    for family, marker in _FAMILY_MARKERS:
        if any(k == marker or (marker.endswith('.') and k.startswith(marker))
               for k in keys):
            return family
    raise ValueError(
        'Not a torchvision ResNet/ResNeXt, DenseNet or RegNet state dict: '
        f'none of {[m for _, m in _FAMILY_MARKERS]} among its keys (first '
        f'keys: {keys[:5]}).')


def _densenet_key(key: str, num_blocks: int) -> str:
    """mmpretrain DenseNet name of a torchvision DenseNet key."""
    for old, new in _DENSE_STEM.items():
        if key.startswith(old):
            return new + key[len(old):]
    match = _DENSE_LAYER.match(key)
    if match:
        block, layer, kind, index, rest = match.groups()
        return (f'stages.{int(block) - 1}.block.{int(layer) - 1}.'
                f'{kind}{index}.{rest}')
    match = _DENSE_TRANSITION.match(key)
    if match:
        index, kind, rest = match.groups()
        return f'transitions.{int(index) - 1}.{kind}.{rest}'
    if key.startswith('features.norm5.'):
        # mmpretrain counts the final norm (+ ReLU) as the last transition.
        rest = key[len('features.norm5.'):]
        return f'transitions.{num_blocks - 1}.0.{rest}'
    raise KeyError(key)


def _strip_wrappers(checkpoint: Mapping) -> Mapping[str, torch.Tensor]:
    """The state dict inside a raw / ``state_dict`` / ``model`` checkpoint."""
    for field in ('state_dict', 'model'):
        if field in checkpoint and isinstance(checkpoint[field], Mapping):
            checkpoint = checkpoint[field]
            break
    keys = list(checkpoint)
    # DistributedDataParallel saves every key under 'module.'.
    if keys and all(k.startswith('module.') for k in keys):
        checkpoint = {k[len('module.'):]: v for k, v in checkpoint.items()}
    bad = [k for k, v in checkpoint.items() if not torch.is_tensor(v)]
    if bad:
        raise ValueError('Expected a torchvision state dict (name -> tensor); '
                         f'entries {bad[:5]} are not tensors.')
    return checkpoint


def convert_torchvision_state_dict(
        checkpoint: Mapping,
        prefix: str = 'backbone.') -> Tuple[Dict[str, torch.Tensor],
                                            List[str]]:
    """Rename a torchvision checkpoint to mmpretrain backbone keys.

    The authors initialised every backbone from torchvision's IMAGENET1K_V1
    weights, while mmpretrain's model zoo trained its own. To reproduce the
    paper exactly, :func:`convert_torchvision_state_dict` renames a torchvision
    state dict to the keys of the matching mmpretrain backbone:

    * ResNet / ResNeXt: mmpretrain already uses torchvision's names
      (``conv1``, ``bn1``, ``layer1.0.downsample.0`` ...), so only the prefix
      changes;
    * DenseNet: ``features.conv0/norm0`` -> ``stem.0/1``,
      ``features.denseblock{b}.denselayer{l}`` -> ``stages.{b-1}.block.{l-1}``,
      ``features.transition{t}`` -> ``transitions.{t-1}``, and the final
      ``features.norm5`` -> ``transitions.{last}.0``. torchvision's published
      DenseNet files still use the legacy names ``norm.1`` / ``conv.2`` inside
      the dense layers; both spellings are accepted;
    * RegNet: :class:`TorchvisionRegNet` keeps torchvision's names.

    Classifier weights (``fc.*``, ``classifier.*``) are dropped: the
    multi-label head has other classes. Any other key the rules do not know is
    an error, so a checkpoint of another architecture cannot half-load.

    Args:
        checkpoint (Mapping): a torchvision state dict (optionally inside
            ``state_dict`` / ``model``, optionally with DDP's ``module.``).
        prefix (str): prepended to every converted key. ``'backbone.'``
            (default) gives the layout of an mmpretrain classifier
            checkpoint, loadable with ``Pretrained(prefix='backbone')``.

    Returns:
        tuple: the converted state dict (in the source order) and the
        dropped classifier keys.

    Raises:
        ValueError: the family is unknown, or a key matches no rule (its
            name is in the message).
    """
    state = _strip_wrappers(checkpoint)
    family = detect_family(state)
    num_blocks = 1 + max(
        (int(m.group(1)) - 1 for m in map(_DENSE_LAYER.match, state) if m),
        default=0)
    converted, dropped = OrderedDict(), []
    for key, value in state.items():
        if _CLASSIFIER.match(key):
            dropped.append(key)
            continue
        if family == 'densenet':
            try:
                new = _densenet_key(key, num_blocks)
            except KeyError:
                new = None
        else:
            pattern = _RESNET_KEY if family == 'resnet' else _REGNET_KEY
            new = key if pattern.match(key) else None
        if new is None:
            raise ValueError(f'torchvision {family} key {key!r} has no '
                             'mmpretrain counterpart; is this checkpoint '
                             'from a model mmtwoway supports?')
        converted[prefix + new] = value
    return converted, dropped


@CheckpointLoader.register_scheme(prefixes=SCHEME)
def load_from_torchvision_converted(filename: str, map_location=None) -> dict:
    """Load ``from-torchvision://<URL or path>`` in mmpretrain's key names.

    Importing this module registers the checkpoint scheme
    ``from-torchvision://``: ``checkpoint='from-torchvision://<URL or path>'``
    in a ``Pretrained`` init_cfg with ``prefix='backbone'`` loads a torchvision
    file (downloaded or local) and converts it on the fly.

    The part after the scheme is loaded by mmengine's own loaders (http(s),
    local files, ``torchvision://name``, ...), then converted by
    :func:`convert_torchvision_state_dict`.

    Args:
        filename (str): ``'from-torchvision://'`` followed by the source.
        map_location (str, optional): as in :func:`torch.load`.

    Returns:
        dict: ``{'state_dict': {'backbone.<key>': tensor, ...}}``.
    """
    source = filename[len(SCHEME):]
    if not source:
        raise ValueError(f'{filename!r}: give a URL or a path after '
                         f'{SCHEME}')
    state, dropped = convert_torchvision_state_dict(
        CheckpointLoader.load_checkpoint(source, map_location))
    print_log(
        f'{SCHEME}: {len(state)} tensors of {source} renamed to mmpretrain '
        f'backbone keys; classifier {dropped} left out.',
        logger='current')
    return {'state_dict': state}
