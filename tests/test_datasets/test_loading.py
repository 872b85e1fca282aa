"""LoadCheckedImageFromFile: mmcv's output, errors that name the file.

Real photos (scikit-learn's sample images) in every format OpenCV reads
here, and the same files damaged the ways files get damaged.
"""
import io

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile as MMCVLoadImageFromFile
from mmengine.registry import init_default_scope
from mmpretrain.registry import TRANSFORMS
from PIL import Image
from sklearn.datasets import load_sample_images

from mmtwoway.datasets.transforms import (ImageReadError,
                                          LoadCheckedImageFromFile, read_image)

FORMATS = {'jpg': ('JPEG', {}), 'progressive.jpg': ('JPEG',
                                                    dict(progressive=True)),
           'png': ('PNG', {}), 'bmp': ('BMP', {}), 'webp': ('WEBP', {})}


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    pixels = load_sample_images().images[0][::4, ::4]  # 107 x 160
    paths = {}
    for ext, (fmt, kwargs) in FORMATS.items():
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt, **kwargs)
        paths[ext] = folder / f'china.{ext}'
        paths[ext].write_bytes(buf.getvalue())
    return paths


def load(path, **kwargs):
    return LoadCheckedImageFromFile(**kwargs)(dict(img_path=str(path)))


def test_the_registry_gives_this_transform_under_its_own_name():
    init_default_scope('mmpretrain')
    assert type(TRANSFORMS.build(dict(
        type='LoadCheckedImageFromFile'))) is LoadCheckedImageFromFile
    assert issubclass(LoadCheckedImageFromFile, MMCVLoadImageFromFile)
    # mmcv's name still gives mmcv's class
    assert type(TRANSFORMS.build(dict(
        type='LoadImageFromFile'))) is MMCVLoadImageFromFile


def test_an_image_the_inferencer_decoded_passes_unchanged(photos):
    img = read_image(str(photos['png']))
    sample = dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
    assert LoadCheckedImageFromFile()(dict(sample))['img'] is img


@pytest.mark.parametrize('ext', list(FORMATS))
@pytest.mark.parametrize('kwargs', [{}, dict(to_float32=True),
                                    dict(color_type='grayscale')])
def test_readable_images_give_mmcvs_output(photos, ext, kwargs):
    ours = load(photos[ext], **kwargs)
    theirs = MMCVLoadImageFromFile(**kwargs)(dict(img_path=str(
        photos[ext])))
    assert ours.keys() == theirs.keys()
    np.testing.assert_array_equal(ours['img'], theirs['img'])
    assert ours['img'].dtype == theirs['img'].dtype
    assert ours["img_shape"] == theirs["img_shape"] == (107, 160)


def damage(tmp_path, photos, ext, kind):
    data = photos[ext].read_bytes()
    cut = {'empty': b'', 'half': data[:len(data) // 2],
           'tail': data[:-2], 'text': b'<!DOCTYPE html><p>not found'}[kind]
    path = tmp_path / f'{kind}.{ext}'
    path.write_bytes(cut)
    return path


@pytest.mark.parametrize('ext,kind,reason', [
    ('jpg', 'empty', r'the file is empty \(0 bytes\)'),
    ('png', 'text', r"it is not an image file \(it starts with "
     r"b'<!DOCTYPE ht"),
    ('jpg', 'half', r'the JPEG is truncated \(no end-of-image marker after '
     r'its last scan\)'),
    ('jpg', 'tail', r'the JPEG is truncated'),
    ('progressive.jpg', 'half', r'the JPEG is truncated'),
    ('png', 'half', r'the PNG data cannot be decoded \(truncated or '
     r'damaged\)'),
    ('bmp', 'half', r'the BMP data cannot be decoded'),
    ('webp', 'half', r'the WebP data cannot be decoded'),
])
def test_unreadable_images_name_the_file_and_the_reason(
        tmp_path, photos, ext, kind, reason):
    path = damage(tmp_path, photos, ext, kind)
    with pytest.raises(ImageReadError, match=rf'image {path} cannot be '
                       rf'read: {reason}') as err:
        load(path)
    assert err.value.path == str(path)
    with pytest.raises(ImageReadError, match=reason):
        read_image(str(path))
    # mmcv's behaviour for ignore_empty: skip the sample
    assert load(path, ignore_empty=True) is None


def test_data_after_the_jpeg_end_marker_is_fine(tmp_path, photos):
    """Some cameras append data after the image; it decodes normally."""
    path = tmp_path / 'appended.jpg'
    path.write_bytes(photos['jpg'].read_bytes() + b'\x00MAKERNOTE' * 50)
    np.testing.assert_array_equal(
        load(path)['img'], load(photos['jpg'])['img'])


def test_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / 'nowhere.jpg')
