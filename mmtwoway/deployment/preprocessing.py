"""The input tensor of an exported model: its description and how to make it.

The tensor (docs/deployment.md) is what the PyTorch model's backbone gets.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..utils.misc import json_safe

# Transforms that do not change what the network sees (loading is step 1,
# PackInputs only lays out the array).
_LOADERS = ('LoadImageFromFile', 'LoadCheckedImageFromFile')
_PASSIVE = _LOADERS + ('PackInputs', )


def _tuples(value: Any) -> Any:
    """JSON lists back to tuples, as mmcv transforms expect them."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _geometry(pipeline: List[dict]) -> Dict[str, Any]:
    """The resize / crop of a test pipeline, for readers without mmcv.

    Returns:
        dict: ``resize_short_edge`` (int or None), ``center_crop`` and
        ``size`` (``[H, W]`` or None: the image's own size), and
        ``other_transforms`` (names this summary does not describe).
    """
    out: Dict[str, Any] = dict(
        resize_short_edge=None, center_crop=None, size=None,
        other_transforms=[])
    for t in pipeline:
        kind = t.get('type')
        if kind == 'ResizeEdge' and t.get('edge', 'short') == 'short':
            out['resize_short_edge'] = int(t['scale'])
            out['size'] = None
        elif kind == 'CenterCrop' and not t.get('auto_pad', False):
            # mmcv's crop_size is (w, h); the metadata says [H, W].
            w, h = (t['crop_size'], ) * 2 if isinstance(
                t['crop_size'], int) else t['crop_size']
            out['center_crop'] = out['size'] = [int(h), int(w)]
        elif kind == 'Resize' and not t.get('keep_ratio', False) and \
                t.get('scale') is not None:
            w, h = (t['scale'], ) * 2 if isinstance(t['scale'],
                                                   int) else t['scale']
            out['size'] = [int(h), int(w)]
        elif kind not in _PASSIVE:
            out['other_transforms'].append(kind)
    return out


def input_spec(model: torch.nn.Module, pipeline: Sequence[dict],
               input_name: str = 'input') -> Dict[str, Any]:
    """The ``preprocessing`` metadata of an exported model.

    The input is what ``ImageClassificationInferencer`` feeds the backbone:
    the image decoded by ``mmcv.imread`` (BGR, EXIF applied, grey as three
    channels), the test pipeline, then ``ClsDataPreprocessor`` (``to_rgb``,
    ``(pixel - mean) / std`` in 0-255 units), as float32 ``(N, 3, H, W)``.

    Args:
        model (torch.nn.Module):
            A loaded mmpretrain classifier (its ``data_preprocessor``
            gives channel order, mean and std).
        pipeline (Sequence[dict]): The config's test pipeline.
        input_name (str): The graph input's name.

    Returns:
        dict: ``input``, ``layout``, ``dtype``, ``channel_order``, ``mean``,
        ``std``, ``formula``, ``decoder``, ``pipeline`` (the test pipeline
        without ``LoadImageFromFile``, as the inferencer runs it) and the
        summary of :func:`_geometry`.

    Raises:
        ValueError: A data preprocessor other than mmpretrain's
            ``ClsDataPreprocessor``, or one that pads.
    """
    pre = model.data_preprocessor
    if type(pre).__name__ != 'ClsDataPreprocessor':
        raise ValueError(f'cannot describe the input of a model whose data '
                         f'preprocessor is {type(pre).__name__}; export '
                         'supports mmpretrain\'s ClsDataPreprocessor.')
    if getattr(pre, 'pad_size_divisor', 1) != 1:
        raise ValueError('the data preprocessor pads images '
                         f'(pad_size_divisor={pre.pad_size_divisor}); export '
                         'supports pad_size_divisor=1 only.')
    if getattr(pre, '_enable_normalize', False):
        mean = pre.mean.flatten().tolist()
        std = pre.std.flatten().tolist()
    else:
        mean, std = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    steps = [json_safe(t) for t in pipeline
             if t.get('type') not in _LOADERS]
    return dict(
        input=input_name,
        layout='NCHW',
        dtype='float32',
        channel_order='RGB' if pre.to_rgb else 'BGR',
        mean=mean,
        std=std,
        formula='(pixel - mean) / std, pixels in 0..255, per channel in '
        'channel_order',
        decoder='OpenCV (mmcv.imread): BGR, EXIF orientation applied',
        pipeline=steps,
        **_geometry(steps))


class ImagePreprocessor:
    """Image files -> the input tensor of an exported model.

    Runs the recorded pipeline with mmcv / mmpretrain, as the PyTorch path
    does (:func:`mmtwoway.apis.predict_images`), then the data
    preprocessor's channel order and normalisation in float32.

    Args:
        spec (dict): The ``preprocessing`` metadata (:func:`input_spec`).
    """

    def __init__(self, spec: Dict[str, Any]) -> None:
        import mmtwoway  # noqa: F401  (mmpretrain's transforms + ours)
        from mmcv.transforms import Compose
        from mmpretrain.registry import TRANSFORMS

        self.spec = spec
        self.pipeline = Compose(
            [TRANSFORMS.build(_tuples(t)) for t in spec['pipeline']])
        self.to_rgb = spec['channel_order'] == 'RGB'
        self.mean = np.asarray(spec['mean'], np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(spec['std'], np.float32).reshape(-1, 1, 1)

    def __call__(self, path: str) -> np.ndarray:
        """The (3, H, W) float32 input of one image.

        Raises:
            FileNotFoundError: The file does not exist.
            ImageReadError: The file cannot be decoded (the message names
                it and the reason), as on the PyTorch path.
        """
        from mmtwoway.datasets.transforms.loading import read_image
        img = read_image(path)
        packed = self.pipeline(
            dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))
        x = packed['inputs'].numpy()
        if self.to_rgb and x.shape[0] == 3:
            x = x[::-1]
        # Subtract, then divide, in float32: the data preprocessor's order.
        return (x.astype(np.float32) - self.mean) / self.std

    def batch(self, paths: Sequence[str]) -> np.ndarray:
        """The (N, 3, H, W) input of several images of one size.

        Raises:
            ValueError: The images come out of the pipeline in different
                sizes (group them by size first, as
                :meth:`~.onnx_runtime.OnnxClassifier.predict` does).
        """
        arrays = [self(p) for p in paths]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            sizes = ', '.join(f'{p}: {a.shape[1]}x{a.shape[2]}'
                              for p, a in zip(paths, arrays))
            raise ValueError(
                'images of one batch must have one size after the '
                f'pipeline, got {sizes}.')
        return np.ascontiguousarray(np.stack(arrays))


def describe_input(spec: Dict[str, Any]) -> str:
    """One line saying which tensor the model expects.

    Args:
        spec (dict): The ``preprocessing`` metadata (:func:`input_spec`).

    Returns:
        str: e.g. ``"input": float32 (N, 3, 224, 224): image short edge
        resized to 256, center-cropped to 224x224; RGB, (pixel - mean) /
        std with mean [...], std [...]``.
    """
    steps = [
        f'short edge resized to {spec["resize_short_edge"]}'
        if spec['resize_short_edge'] else None,
        'center-cropped to {}x{}'.format(*spec['center_crop'])
        if spec['center_crop'] else None,
    ] + [f'{t} applied' for t in spec['other_transforms']]
    steps = [s for s in steps if s]
    if spec['size']:
        shape = '{}, {}'.format(*spec['size'])
    else:
        shape = 'H, W'
        steps.append('any H and W' if steps else
                     'at its own size (no resize; any H and W)')
    return (f'"{spec["input"]}": float32 (N, 3, {shape}): image '
            f'{", ".join(steps)}; {spec["channel_order"]}, '
            f'(pixel - mean) / std with mean {_fmt(spec["mean"])}, std '
            f'{_fmt(spec["std"])}')


def _fmt(values: Optional[Sequence[float]]) -> str:
    return '[' + ', '.join(f'{v:g}' for v in values) + ']'
