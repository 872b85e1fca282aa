"""CropInstance and the box geometry it shares with the instance datasets."""
import numpy as np
import pytest

from mmpretrain.registry import TRANSFORMS
from mmtwoway.datasets.transforms import CropInstance
from mmtwoway.datasets.transforms.crop_instance import (crop_region,
                                                        enlarge_box,
                                                        visible_extent,
                                                        xywh_to_xyxy)


def image(height=10, width=20):
    # Every pixel distinct, so a wrong offset cannot go unnoticed.
    return np.arange(
        height * width * 3, dtype=np.int64).reshape(height, width, 3)


def test_box_helpers():
    assert xywh_to_xyxy([1, 2, 3, 4]) == [1., 2., 4., 6.]
    assert enlarge_box([2, 2, 6, 4], 1.5) == [1., 1.5, 7., 4.5]
    assert visible_extent([-5, 2, 5, 20], 20, 10) == (5., 8.)
    assert visible_extent([25, 2, 30, 8], 20, 10) == (0., 6.)
    assert visible_extent([4, 4, 4, 8], 20, 10) == (0., 4.)
    # Outward rounding, clipping, and boxes that miss the image.
    assert crop_region([2.5, 3.2, 7.1, 8.9], 20, 10) == (2, 3, 8, 9)
    assert crop_region([-3, -1, 25, 30], 20, 10) == (0, 0, 20, 10)
    assert crop_region([20, 0, 25, 5], 20, 10) is None
    assert crop_region([3, 3, 3, 9], 20, 10) is None
    # Context turns a degenerate box into a degenerate one, a small box
    # into a larger crop.
    assert crop_region([8, 4, 12, 6], 20, 10, context=2.0) == (6, 3, 14, 7)


@pytest.mark.parametrize(
    'box, context, region',
    [
        ([2.5, 1.0, 9.0, 7.5], 1.0, (2, 1, 9, 8)),
        ([-4.0, 6.0, 5.0, 14.0], 1.0, (0, 6, 5, 10)),  # partly outside
        ([15.5, -3.0, 25.0, 4.0], 1.0, (15, 0, 20, 4)),
        ([8.0, 4.0, 12.0, 6.0], 3.0, (4, 2, 16, 8)),  # context, still inside
        ([16.0, 6.0, 20.0, 10.0], 2.0, (14, 4, 20, 10)),  # context, clipped
    ])
def test_crop(box, context, region):
    img = image()
    crop = TRANSFORMS.build(dict(type='CropInstance', context=context))
    out = crop(
        dict(
            img=img.copy(),
            img_shape=(10, 20),
            ori_shape=(10, 20),
            instance_bbox=box,
            img_path='a.jpg'))
    x1, y1, x2, y2 = region
    np.testing.assert_array_equal(out['img'], img[y1:y2, x1:x2])
    assert out['img'].flags.c_contiguous
    assert out['img_shape'] == (y2 - y1, x2 - x1)
    assert out['ori_shape'] == (10, 20)
    assert out['crop_bbox'].tolist() == list(region)


def test_crop_is_a_copy():
    img = image()
    out = CropInstance()(dict(img=img, instance_bbox=[0, 0, 4, 4]))
    out['img'][:] = -1
    assert img.min() == 0


def test_other_box_key():
    out = CropInstance(bbox_key='gt_bbox')(
        dict(img=image(), gt_bbox=[1, 1, 3, 4]))
    assert out['img'].shape == (3, 2, 3)


def test_errors():
    with pytest.raises(ValueError, match='context must be > 0'):
        CropInstance(context=0)
    with pytest.raises(KeyError, match='has no "instance_bbox"'):
        CropInstance()(dict(img=image(), img_path='x.jpg'))
    with pytest.raises(ValueError, match='does not overlap its 20x10 image'):
        CropInstance()(
            dict(img=image(), instance_bbox=[30, 0, 40, 5], img_path='x.jpg'))
    assert 'context=1.5' in repr(CropInstance(context=1.5))
