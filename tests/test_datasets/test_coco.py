"""Tests of CocoMultiLabel on tiny fixtures in the exact COCO 2014 format."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from mmpretrain.registry import DATASETS
from mmtwoway.datasets import CocoMultiLabel
from mmtwoway.datasets import coco as coco_module

# Non-contiguous ids (COCO's run 1..90 with gaps), listed out of id order:
# class index = position in ascending id order, not in file order.
CATEGORIES = [
    dict(id=90, name='toothbrush', supercategory='indoor'),
    dict(id=1, name='person', supercategory='person'),
    dict(id=5, name='airplane', supercategory='vehicle'),
    dict(id=3, name='car', supercategory='vehicle'),
    dict(id=2, name='bicycle', supercategory='vehicle'),
]
CLASSES = ('person', 'bicycle', 'car', 'airplane', 'toothbrush')
CLASS_OF_ID = {1: 0, 2: 1, 3: 2, 5: 3, 90: 4}

# Image ids out of order in the file; 100 has no annotation.
IMAGE_IDS = [42, 7, 9, 100, 13]
IMAGE_SIZES = {42: (10, 12), 7: (8, 8), 9: (12, 6), 100: (6, 6), 13: (9, 7)}

# (annotation id, image id, category id, iscrowd)
ANNOTATIONS = [
    (501, 7, 1, 0),
    (502, 7, 1, 0),  # a second person on image 7
    (503, 7, 3, 0),
    (504, 9, 90, 1),  # crowd: still a positive
    (505, 9, 2, 0),
    (506, 42, 5, 0),
    (507, 13, 1, 1),  # image 13 has a crowd annotation only
    (508, 7, 1, 0),  # a third person, listed after others
]

# Kept images, ascending id, with their sorted unique class indices.
EXPECTED = [(7, [0, 2]), (9, [1, 4]), (13, [0]), (42, [3])]


def file_name(img_id):
    return f'COCO_train2014_{img_id:012d}.jpg'


def coco_json():
    """A COCO 2014 instances dict with every field the real files have."""
    images = []
    for img_id in IMAGE_IDS:
        w, h = IMAGE_SIZES[img_id]
        images.append(
            dict(
                license=1,
                file_name=file_name(img_id),
                coco_url=f'http://images.cocodataset.org/train2014/'
                f'{file_name(img_id)}',
                height=h,
                width=w,
                date_captured='2013-11-14 16:28:13',
                flickr_url='http://farm4.staticflickr.com/x.jpg',
                id=img_id))
    annotations = []
    for ann_id, img_id, cat_id, crowd in ANNOTATIONS:
        w, h = IMAGE_SIZES[img_id]
        if crowd:
            # Crowd regions are RLE masks in COCO.
            segmentation = dict(counts=[0, w * h], size=[h, w])
        else:
            segmentation = [[1.0, 1.0, 4.0, 1.0, 4.0, 4.0, 1.0, 4.0]]
        annotations.append(
            dict(
                segmentation=segmentation,
                area=9.0,
                iscrowd=crowd,
                image_id=img_id,
                bbox=[1.0, 1.0, 3.0, 3.0],
                category_id=cat_id,
                id=ann_id))
    return dict(
        info=dict(description='COCO 2014 Dataset', version='1.0'),
        licenses=[dict(url='http://x', id=1, name='License')],
        images=images,
        annotations=annotations,
        categories=copy.deepcopy(CATEGORIES))


def write_fixture(root,
                  data=None,
                  ann_file='annotations/instances_train2014.json',
                  img_dir='images/train2014',
                  skip_images=()):
    """Write the json and one small real JPEG per image under ``root``."""
    data = coco_json() if data is None else data
    path = osp.join(root, ann_file)
    (root / ann_file).parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)
    (root / img_dir).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for img in data['images']:
        if img['id'] in skip_images:
            continue
        pixels = rng.integers(0, 256, (img['height'], img['width'], 3),
                              dtype=np.uint8)
        Image.fromarray(pixels).save(root / img_dir / img['file_name'])
    return path


def build(root, **kwargs):
    kwargs.setdefault('data_prefix', 'images/train2014')
    return CocoMultiLabel(data_root=str(root), **kwargs)


def test_samples_labels_and_classes(tmp_path):
    write_fixture(tmp_path)
    ds = build(tmp_path)
    assert ds.CLASSES == CLASSES
    assert ds.metainfo['classes'] == CLASSES
    assert len(ds) == len(EXPECTED)
    for idx, (img_id, labels) in enumerate(EXPECTED):
        info = ds.get_data_info(idx)
        assert info['img_id'] == img_id
        assert info['gt_label'] == labels
        assert ds.get_cat_ids(idx) == labels
        assert info['img_path'] == osp.join(
            str(tmp_path), 'images/train2014', file_name(img_id))
        assert osp.isfile(info['img_path'])
        assert 'gt_score' not in info  # COCO has no unknown labels

    # The multi-hot matrix, derived independently from the annotations.
    expected = np.zeros((len(EXPECTED), len(CLASSES)), dtype=int)
    row = {img_id: i for i, (img_id, _) in enumerate(EXPECTED)}
    for _, img_id, cat_id, _ in ANNOTATIONS:
        expected[row[img_id], CLASS_OF_ID[cat_id]] = 1
    got = np.zeros_like(expected)
    for i in range(len(ds)):
        got[i, ds.get_data_info(i)['gt_label']] = 1
    np.testing.assert_array_equal(got, expected)


def test_registry_default_prefix_and_dict_prefix(tmp_path):
    write_fixture(tmp_path, img_dir='train2014')
    ds = DATASETS.build(dict(type='CocoMultiLabel', data_root=str(tmp_path)))
    assert isinstance(ds, CocoMultiLabel)
    assert len(ds) == 4
    assert ds.get_data_info(0)['img_path'] == osp.join(
        str(tmp_path), 'train2014', file_name(7))

    ds = build(tmp_path, data_prefix=dict(img_path='train2014'))
    assert len(ds) == 4
    assert 'Annotation file' in repr(ds)


def test_val_file_and_absolute_paths(tmp_path):
    ann = write_fixture(
        tmp_path,
        ann_file='annotations/instances_val2014.json',
        img_dir='val2014')
    ds = CocoMultiLabel(
        ann_file=ann,
        data_prefix=str(tmp_path / 'val2014'),
        test_mode=True)
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == [
        img_id for img_id, _ in EXPECTED
    ]


def test_pipeline_packs_gt_label(tmp_path):
    write_fixture(tmp_path)
    ds = build(
        tmp_path,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')])
    for idx, (img_id, labels) in enumerate(EXPECTED):
        out = ds[idx]
        sample = out['data_samples']
        assert torch.equal(sample.gt_label, torch.tensor(labels))
        w, h = IMAGE_SIZES[img_id]
        assert tuple(out['inputs'].shape) == (3, h, w)
        assert sample.img_path.endswith(file_name(img_id))
        assert 'gt_score' not in sample


def test_logs_kept_and_dropped(tmp_path, monkeypatch):
    write_fixture(tmp_path)
    messages = []
    monkeypatch.setattr(coco_module, 'print_log',
                        lambda msg, **kw: messages.append(msg))
    build(tmp_path)
    assert len(messages) == 1
    assert 'kept 4 of 5 images' in messages[0]
    assert 'dropped 1 without annotations' in messages[0]


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        build(tmp_path)
    msg = str(err.value)
    assert osp.join(str(tmp_path), 'annotations/instances_train2014.json') \
        in msg
    assert 'layout' in msg and 'data_root' in msg


def test_malformed_json(tmp_path):
    path = write_fixture(tmp_path)
    with open(path, 'w') as f:
        f.write('{"images": [')
    with pytest.raises(ValueError, match='not valid JSON') as err:
        build(tmp_path)
    assert path in str(err.value)

    with open(path, 'w') as f:
        json.dump([1, 2], f)
    with pytest.raises(ValueError, match='not a COCO instances file') as err:
        build(tmp_path)
    assert path in str(err.value)


def test_missing_keys(tmp_path):
    data = coco_json()
    del data['categories']
    path = write_fixture(tmp_path, data=data)
    with pytest.raises(ValueError, match="categories") as err:
        build(tmp_path)
    assert path in str(err.value)

    data = coco_json()
    del data['annotations'][2]['category_id']
    path = write_fixture(tmp_path, data=data)
    with pytest.raises(ValueError, match='category_id') as err:
        build(tmp_path)
    assert path in str(err.value)


def test_unknown_category_id(tmp_path):
    data = coco_json()
    data['annotations'][3]['category_id'] = 4  # a gap among 1,2,3,5,90
    path = write_fixture(tmp_path, data=data)
    with pytest.raises(ValueError) as err:
        build(tmp_path)
    msg = str(err.value)
    assert path in msg
    assert 'annotation id 504' in msg and 'category_id 4' in msg


def test_annotation_of_unknown_image(tmp_path):
    data = coco_json()
    data['annotations'][0]['image_id'] = 12345
    path = write_fixture(tmp_path, data=data)
    with pytest.raises(ValueError, match='image_id 12345') as err:
        build(tmp_path)
    assert path in str(err.value)


def test_duplicate_image_id(tmp_path):
    """pycocotools keeps the last record of an id; the first one, and the
    labels meant for it, used to vanish silently."""
    data = coco_json()
    first = data['images'][0]
    twin = dict(data['images'][1], id=first['id'])
    data['images'].append(twin)
    path = write_fixture(tmp_path, data=data)
    with pytest.raises(ValueError) as err:
        build(tmp_path)
    message = str(err.value)
    assert f'"{path}" lists image id(s) more than once: {first["id"]}.' \
        in message


def test_missing_images(tmp_path):
    path = write_fixture(tmp_path, skip_images=(9, 42))
    with pytest.raises(FileNotFoundError) as err:
        build(tmp_path)
    msg = str(err.value)
    assert '2 image file(s) used by 2 of 4 samples not found' in msg
    assert path in msg
    assert osp.join(str(tmp_path), 'images/train2014', file_name(9)) in msg
    assert osp.join(str(tmp_path), 'images/train2014', file_name(42)) in msg
    assert "'images/train2014'" in msg  # the data_prefix the user gave

    # The dropped image (100) may be missing: only kept ones are checked.
    write_fixture(tmp_path / 'b', skip_images=(100, ))
    assert len(build(tmp_path / 'b')) == 4

    ds = build(tmp_path, check_images=False)
    assert len(ds) == 4

    # As the other datasets: 'skip' leaves them out, counted.
    ds = build(tmp_path, missing_images='skip')
    assert len(ds) == 2
    assert ds.skipped.counts() == {'skipped, image not found': 2}


def test_zero_samples(tmp_path):
    data = coco_json()
    data['annotations'] = []
    path = write_fixture(tmp_path, data=data)
    with pytest.raises(ValueError, match='empty') as err:
        build(tmp_path)
    assert path in str(err.value)


def test_classes_must_match_file(tmp_path):
    write_fixture(tmp_path)
    assert build(tmp_path, classes=list(CLASSES)).CLASSES == CLASSES
    with pytest.raises(ValueError, match='differ from the categories'):
        build(tmp_path, classes=['a', 'b', 'c', 'd', 'e'])
