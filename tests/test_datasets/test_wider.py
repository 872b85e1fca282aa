"""WIDER Attribute read from a fixture in the exact published JSON format."""
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from mmpretrain.registry import DATASETS
from mmtwoway.datasets import WIDERAttribute

import original_formats as F
from label_checks import assert_ignored_entries_ignored, packed_samples

TEST_NAME = 'test/1--Handshaking/1_Handshaking_Handshaking_1_94.jpg'


def build(root, test=False, **kwargs):
    if test:
        kwargs.update(ann_file='wider_attribute_test.json', test_mode=True)
    kwargs.setdefault('cache', False)
    return WIDERAttribute(data_root=str(root), **kwargs)


def expected_target(expected):
    target = torch.full((len(expected), len(F.WIDER_CLASSES)), -1.)
    for row, (_, _, _, pos, neg) in enumerate(expected):
        target[row, neg] = 0
        target[row, pos] = 1
    return target


@pytest.mark.parametrize('split, prefixes', [
    (None, ('train', 'val')),
    ('train', ('train', )),
    ('val', ('val', )),
])
def test_trainval_boxes(tmp_path, split, prefixes):
    F.write_wider(tmp_path)
    ds = build(tmp_path, split=split)
    assert ds.CLASSES == F.WIDER_CLASSES
    expected = F.wider_expected(prefixes)
    assert len(ds) == len(expected)
    target = expected_target(expected)
    for i, (name, k, box, pos, neg) in enumerate(expected):
        info = ds.get_data_info(i)
        assert info['img_path'] == osp.join(str(tmp_path), 'Image', name)
        assert (info['img_id'], info['box_index']) == (name, k)
        assert info['instance_bbox'] == [float(v) for v in box]
        assert info['gt_label'] == pos and info['neg_label'] == neg
        np.testing.assert_array_equal(info['gt_score'], target[i].numpy())


def test_test_file(tmp_path):
    F.write_wider(tmp_path)
    ds = DATASETS.build(
        dict(
            type='WIDERAttribute',
            data_root=str(tmp_path),
            ann_file='wider_attribute_test.json',
            test_mode=True,
            cache=False))
    assert [(ds.get_data_info(i)['img_id'], ds.get_data_info(i)['box_index'])
            for i in range(len(ds))] == [(TEST_NAME, 0), (TEST_NAME, 1)]
    # The second person has every attribute unspecified: all ignored.
    assert (ds.get_data_info(1)['gt_score'] == -1).all()


def test_box_rule_drops_degenerate_and_outside_boxes(tmp_path):
    F.write_wider(tmp_path)
    ds = build(tmp_path)
    [(reason, records)] = ds.skipped.as_dict().items()
    assert reason == 'skipped, less than 1 px of the box inside its image'
    dropped = [(name, k) for name, targets in F.WIDER_TARGETS.items()
               if not name.startswith('test/') for k, t in enumerate(targets)
               if not t[3]]
    assert len(records) == len(dropped) == 2
    for (name, k), record in zip(dropped, records):
        assert f'image "{name}", target #{k}' in record
        assert 'wider_attribute_trainval.json' in record
    # A stricter rule drops the 9-px-wide box that starts at x = -6 too.
    assert len(build(tmp_path, min_box_size=10)) == len(ds) - 1


def test_crop_and_ignored_labels_through_the_pipeline(tmp_path):
    F.write_wider(tmp_path)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='CropInstance'),
        dict(type='PackInputs')
    ]
    ds = build(tmp_path, pipeline=pipeline)
    # Box 1 of the first image, [-6, 2, 15, 30] in a 48x36 image.
    info, out = ds.get_data_info(1), ds[1]
    full = mmcv.imread(info['img_path'])
    np.testing.assert_array_equal(out['inputs'].permute(1, 2, 0).numpy(),
                                  full[2:32, 0:9])
    assert tuple(out['data_samples'].img_shape) == (30, 9)

    pipeline.insert(2, dict(type='Resize', scale=(8, 8)))
    ds = build(tmp_path, pipeline=pipeline)
    assert_ignored_entries_ignored(
        packed_samples(ds),
        expected_target(F.wider_expected(('train', 'val'))))


def test_missing_image_error_or_counted_skip(tmp_path):
    missing = 'val/0--Parade/0_Parade_Parade_0_102.jpg'
    F.write_wider(tmp_path, skip_images=[missing])
    with pytest.raises(FileNotFoundError) as err:
        build(tmp_path)
    assert f'image "{missing}", target #0' in str(err.value)
    assert "data_prefix=" in str(err.value)
    ds = build(tmp_path, missing_images='skip')
    assert len(ds) == len(F.wider_expected(('train', 'val'))) - 1
    assert len(ds.skipped.as_dict()['skipped, image not found']) == 1
    # Only the chosen split's images matter.
    assert len(build(tmp_path, split='train')) == 3


def _write_changed(root, change):
    F.write_wider(root)
    path = osp.join(str(root), 'wider_attribute_trainval.json')
    with open(path) as f:
        data = json.load(f)
    change(data)
    F.write_json(path, data)
    return path


@pytest.mark.parametrize('change, match', [
    (lambda d: d['images'][0]['targets'][1]['attribute'].__setitem__(3, 2),
     r'got \(index, value\) \[\(3, 2\)\]'),
    (lambda d: d['images'][0]['targets'][1]['attribute'].pop(),
     'list of 14 values'),
    (lambda d: d['images'][0]['targets'][1].pop('bbox'), '"bbox"'),
    (lambda d: d['images'][0]['targets'][1].update(bbox=[1, 2, None, 4]),
     'four finite'),
])
def test_malformed_targets(tmp_path, change, match):
    path = _write_changed(tmp_path, change)
    with pytest.raises(ValueError, match=match) as err:
        build(tmp_path)
    msg = str(err.value)
    assert path in msg and 'target #1' in msg
    assert 'train/0--Parade/0_Parade_marchingband_1_849.jpg' in msg


@pytest.mark.parametrize('change, match', [
    (lambda d: d['images'][1].update(file_name='Image/train/x.jpg'),
     'must start with one of'),
    (lambda d: d.pop('attribute_id_map'), 'attribute_id_map'),
    (lambda d: d['attribute_id_map'].pop('13'), 'attribute_id_map'),
    (lambda d: d['images'][2].pop('targets'), 'targets'),
    (lambda d: d.pop('images'), '"images" list'),
])
def test_malformed_file(tmp_path, change, match):
    path = _write_changed(tmp_path, change)
    with pytest.raises(ValueError, match=match) as err:
        build(tmp_path)
    assert path in str(err.value)


def test_errors_for_files_split_and_classes(tmp_path):
    with pytest.raises(FileNotFoundError, match='WIDER Attribute layout'):
        build(tmp_path)
    with pytest.raises(ValueError, match='split must be'):
        build(tmp_path, split='trainval')
    F.write_wider(tmp_path)
    (tmp_path / 'wider_attribute_test.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='not valid JSON'):
        build(tmp_path, test=True)
    with pytest.raises(ValueError, match='differ from the 14 classes'):
        build(tmp_path, classes=list(F.WIDER_CLASSES[::-1]))
    assert build(tmp_path, classes=list(F.WIDER_CLASSES)).CLASSES == \
        F.WIDER_CLASSES


def test_zero_samples(tmp_path):
    _write_changed(
        tmp_path, lambda d: d.update(images=[
            img for img in d['images']
            if img['file_name'].startswith('train/2--')
        ]))
    with pytest.raises(ValueError, match='no sample left'):
        build(tmp_path, split='val')
