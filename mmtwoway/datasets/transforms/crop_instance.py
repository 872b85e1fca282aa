"""``CropInstance``: cut one annotated instance (VAW, WIDER) out of its image.

The crop rule and where the configs apply it: docs/datasets.md.
"""
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

# An integer pixel region [x1, y1, x2, y2): rows y1..y2-1, columns x1..x2-1.
Region = Tuple[int, int, int, int]


def xywh_to_xyxy(box: Sequence[float]) -> list:
    """``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` (floats)."""
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def enlarge_box(box: Sequence[float], context: float) -> list:
    """Scale a ``[x1, y1, x2, y2]`` box's width and height by ``context``
    around its centre."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w, half_h = (x2 - x1) * context / 2, (y2 - y1) * context / 2
    return [cx - half_w, cy - half_h, cx + half_w, cy + half_h]


def clip_box(box: Sequence[float], width: float, height: float) -> list:
    """Clip a ``[x1, y1, x2, y2]`` box to the image ``[0, width] x [0,
    height]``; the result may be empty (``x2 <= x1`` or ``y2 <= y1``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [
        min(max(x1, 0.), width),
        min(max(y1, 0.), height),
        min(max(x2, 0.), width),
        min(max(y2, 0.), height)
    ]


def visible_extent(box: Sequence[float], width: float,
                   height: float) -> Tuple[float, float]:
    """Width and height of the part of a box inside the image.

    Args:
        box (Sequence[float]): ``[x1, y1, x2, y2]``.
        width (float): Image width.
        height (float): Image height.

    Returns:
        tuple[float, float]: Both 0 or more; 0 when the box misses the
        image along that axis (or is degenerate).
    """
    x1, y1, x2, y2 = clip_box(box, width, height)
    return max(x2 - x1, 0.), max(y2 - y1, 0.)


def crop_region(box: Sequence[float],
                width: int,
                height: int,
                context: float = 1.0) -> Optional[Region]:
    """The whole-pixel region :class:`CropInstance` cuts for a box.

    Args:
        box (Sequence[float]): ``[x1, y1, x2, y2]``.
        width (int): Image width.
        height (int): Image height.
        context (float): Enlargement of the box around its centre.

    Returns:
        tuple | None: ``(x1, y1, x2, y2)`` ints with ``0 <= x1 < x2 <=
        width`` and ``0 <= y1 < y2 <= height``, or None when the (enlarged)
        box does not overlap the image.
    """
    x1, y1, x2, y2 = clip_box(enlarge_box(box, context), width, height)
    if not (x2 > x1 and y2 > y1):
        return None
    # Outward rounding keeps every pixel the box touches.
    return (math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2))


@TRANSFORMS.register_module()
class CropInstance(BaseTransform):
    """Crop the image to the sample's instance box.

    Placed right after ``LoadImageFromFile``, so the usual augmentation runs
    on the crop. The box (in decoded-image pixels) is enlarged around its
    centre by ``context``, clipped to the image and rounded outwards.

    **Required Keys:** ``img``, the box key (default ``instance_bbox``).

    **Modified Keys:** ``img``, ``img_shape``.

    **Added Keys:** ``crop_bbox``: the ``[x1, y1, x2, y2)`` pixel region cut,
    as an int array, in the coordinates of the loaded image.

    Args:
        context (float): Factor that scales the box's width and height
            around its centre before clipping; 1 (default) crops exactly the
            box, 1.2 adds 10% of context on every side. Must be > 0.
        bbox_key (str): The results key of the ``[x1, y1, x2, y2]`` box.
            Defaults to ``'instance_bbox'``.

    Raises:
        KeyError: The sample has no box (the dataset is not an instance
            dataset).
        ValueError: The box does not overlap the image. The datasets drop
            such boxes at load time, using the image header's size, so this
            only happens when an image changed after the dataset was built.

    Examples:
        >>> import numpy as np
        >>> crop = CropInstance()
        >>> out = crop(dict(img=np.zeros((10, 20, 3), np.uint8),
        ...                 instance_bbox=[15.5, -3, 25, 4]))
        >>> out['img'].shape, out['crop_bbox'].tolist()
        ((4, 5, 3), [15, 0, 20, 4])
    """

    def __init__(self,
                 context: float = 1.0,
                 bbox_key: str = 'instance_bbox') -> None:
        if not context > 0:
            raise ValueError(f'CropInstance: context must be > 0, got '
                             f'{context!r}')
        self.context = float(context)
        self.bbox_key = bbox_key

    def transform(self, results: dict) -> dict:
        """Replace ``results['img']`` by the crop of the instance box.

        Args:
            results (dict): A loaded sample.

        Returns:
            dict: The sample with the cropped image.
        """
        if self.bbox_key not in results:
            raise KeyError(
                f'CropInstance: the sample {results.get("img_path", "")!r} '
                f'has no "{self.bbox_key}"; use CropInstance with an '
                'instance dataset (VAW, WIDERAttribute) or set bbox_key.')
        img = results['img']
        height, width = img.shape[:2]
        box = results[self.bbox_key]
        region = crop_region(box, width, height, self.context)
        if region is None:
            raise ValueError(
                f'CropInstance: the box {list(box)} (context '
                f'{self.context}) of {results.get("img_path", "a sample")!r} '
                f'does not overlap its {width}x{height} image. Did the image '
                'file change after the dataset was built?')
        x1, y1, x2, y2 = region
        # A copy, so that the full image can be freed and later in-place
        # transforms do not write into it.
        results['img'] = np.ascontiguousarray(img[y1:y2, x1:x2])
        results['img_shape'] = (y2 - y1, x2 - x1)
        results['crop_bbox'] = np.array(region, dtype=np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(context={self.context}, '
                f'bbox_key={self.bbox_key!r})')
