"""VAW read from a fixture in the exact files of adobe-research/vaw_dataset."""
import copy
import json
import os
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from mmpretrain.registry import DATASETS
from mmtwoway.datasets import VAW
from mmtwoway.datasets import cache as cache_module

import original_formats as F
from label_checks import assert_ignored_entries_ignored, packed_samples

TRAIN_FILES = [f'data/{f}' for f in F.VAW_TRAIN_FILES]
CLASSES = tuple(sorted(F.VAW_ATTRIBUTES, key=F.VAW_ATTRIBUTES.get))


def build(root, split='train', **kwargs):
    ann = TRAIN_FILES if split == 'train' else 'data/test.json'
    kwargs.setdefault('cache', str(root / 'cache'))
    return VAW(data_root=str(root), ann_file=ann, **kwargs)


def expected_ids(split):
    files = F.VAW_TRAIN_FILES if split == 'train' else ('test.json', )
    return [
        str(inst['instance_id']) for f in files for inst in F.VAW_FILES[f]
        if str(inst['instance_id']) not in F.VAW_SKIPPED_BOXES
    ]


def expected_target(ids):
    target = torch.full((len(ids), len(CLASSES)), -1.)
    for row, inst_id in enumerate(ids):
        _, _, pos, neg = F.VAW_EXPECTED[inst_id]
        target[row, neg] = 0
        target[row, pos] = 1
    return target


@pytest.mark.parametrize('split', ['train', 'test'])
def test_every_sample(tmp_path, split):
    F.write_vaw(tmp_path)
    ds = build(tmp_path, split, test_mode=split == 'test')
    assert ds.CLASSES == CLASSES
    ids = expected_ids(split)
    assert [ds.get_data_info(i)['instance_id'] for i in range(len(ds))] == ids
    target = expected_target(ids)
    for i, inst_id in enumerate(ids):
        info = ds.get_data_info(i)
        img_id, box, pos, neg = F.VAW_EXPECTED[inst_id]
        folder = F.VAW_IMAGE_SIZES[img_id][2]
        # Found in whichever of VG_100K / VG_100K_2 holds it.
        assert info['img_path'] == osp.join(
            str(tmp_path), folder, f'{img_id}.jpg')
        assert info['img_id'] == img_id
        assert info['instance_bbox'] == box
        assert info['gt_label'] == pos and info['neg_label'] == neg
        assert info['gt_score'].dtype == np.float32
        np.testing.assert_array_equal(info['gt_score'], target[i].numpy())
        assert ds.get_cat_ids(i) == pos


def test_skipped_boxes_and_conflicts_are_reported(tmp_path):
    F.write_vaw(tmp_path)
    ds = build(tmp_path)
    skipped = ds.skipped.as_dict()
    boxes = skipped['skipped, less than 1 px of the box inside its image']
    assert len(boxes) == len(F.VAW_SKIPPED_BOXES)
    for inst_id, record in zip(F.VAW_SKIPPED_BOXES, boxes):
        assert f'instance_id {inst_id}' in record
    [conflict] = skipped['kept, attribute made ignored: listed as both '
                         'positive and negative']
    assert 'val.json' in conflict and '107899010' in conflict
    assert "'red'" in conflict
    # 'red' (3) of that instance is neither positive nor negative.
    row = [
        ds.get_data_info(i) for i in range(len(ds))
        if ds.get_data_info(i)['instance_id'] == '107899010'
    ][0]
    assert row['gt_score'][CLASSES.index('red')] == -1


def test_crop_with_the_real_pipeline(tmp_path):
    F.write_vaw(tmp_path)
    ds = build(
        tmp_path,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='CropInstance'),
            dict(type='PackInputs')
        ])
    # Whole-pixel regions by hand: floor / ceil of the box clipped to the
    # image (2373241 is 40x30).
    regions = {
        '2373241004': (2, 3, 23, 14),
        '2373241005': (0, 20, 10, 30),  # x < 0 and y2 > 30 clipped
        '2415095001': (10, 5, 19, 17),
        '107899010': (0, 0, 30, 40),
    }
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        out = ds[i]
        x1, y1, x2, y2 = regions[info['instance_id']]
        full = mmcv.imread(info['img_path'])
        crop = out['inputs'].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(crop, full[y1:y2, x1:x2])
        sample = out['data_samples']
        assert tuple(sample.img_shape) == (y2 - y1, x2 - x1)
        torch.testing.assert_close(sample.gt_score,
                                   torch.from_numpy(info['gt_score']))


def test_loss_and_metric_ignore_unlabelled_attributes(tmp_path):
    F.write_vaw(tmp_path)
    ds = build(
        tmp_path,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='CropInstance'),
            dict(type='Resize', scale=(8, 8)),
            dict(type='PackInputs')
        ])
    assert_ignored_entries_ignored(
        packed_samples(ds), expected_target(expected_ids('train')))


def test_ids_as_ints_and_strings_agree(tmp_path):
    files = copy.deepcopy(F.VAW_FILES)
    for inst in files['test.json']:  # flip the spelling of every id
        for key in ('image_id', 'instance_id'):
            value = inst[key]
            inst[key] = int(value) if isinstance(value, str) else str(value)
    F.write_vaw(tmp_path / 'a')
    F.write_vaw(tmp_path / 'b', files=files)
    a, b = build(tmp_path / 'a', 'test'), build(tmp_path / 'b', 'test')
    for i in range(len(a)):
        info_a, info_b = a.get_data_info(i), b.get_data_info(i)
        for key in ('img_id', 'instance_id', 'gt_label', 'neg_label'):
            assert info_a[key] == info_b[key]


def test_merged_image_folder_and_registry(tmp_path):
    F.write_vaw(tmp_path)
    os.makedirs(tmp_path / 'images')
    for img_id, (_, _, folder) in F.VAW_IMAGE_SIZES.items():
        os.rename(tmp_path / folder / f'{img_id}.jpg',
                  tmp_path / 'images' / f'{img_id}.jpg')
    ds = DATASETS.build(
        dict(
            type='VAW',
            data_root=str(tmp_path),
            ann_file='data/test.json',
            img_dirs='images',
            cache=False))
    assert isinstance(ds, VAW) and len(ds) == 2
    assert ds.get_data_info(0)['img_path'] == osp.join(
        str(tmp_path), 'images', '2350190.jpg')
    assert 'Image folders' in repr(ds)


def test_missing_image_error_or_counted_skip(tmp_path):
    F.write_vaw(tmp_path, skip_images=['2415095'])
    with pytest.raises(FileNotFoundError) as err:
        build(tmp_path)
    msg = str(err.value)
    assert 'train_part2.json: instance_id 2415095001' in msg
    assert 'VG_100K/2415095.jpg' in msg and 'missing_images="skip"' in msg

    ds = build(tmp_path, missing_images='skip')
    ids = [ds.get_data_info(i)['instance_id'] for i in range(len(ds))]
    assert ids == [i for i in expected_ids('train') if i != '2415095001']
    # Both boxes of the missing image are counted as such (its second box
    # would also fail the box rule, but the image is checked first).
    missing = ds.skipped.as_dict()['skipped, image not found']
    assert len(missing) == 2 and all('2415095' in m for m in missing)


def test_unknown_attribute_name(tmp_path):
    files = copy.deepcopy(F.VAW_FILES)
    files['train_part2.json'][0]['negative_attributes'] = ['light  colored']
    F.write_vaw(tmp_path, files=files)
    with pytest.raises(ValueError) as err:
        build(tmp_path)
    msg = str(err.value)
    assert 'train_part2.json' in msg and '2415095001' in msg
    assert '"light  colored"' in msg and 'attribute_index.json' in msg


@pytest.mark.parametrize('change, match', [
    (lambda inst: inst.pop('instance_bbox'), 'has no'),
    (lambda inst: inst.update(instance_bbox=[1, 2, 3]), 'four finite'),
    (lambda inst: inst.update(instance_bbox=[1, 2, 'x', 4]), 'four finite'),
    (lambda inst: inst.update(image_id=None), '"image_id" is None'),
    (lambda inst: inst.update(positive_attributes='red'), 'list of'),
])
def test_malformed_instance(tmp_path, change, match):
    files = copy.deepcopy(F.VAW_FILES)
    change(files['val.json'][1])
    F.write_vaw(tmp_path, files=files)
    with pytest.raises(ValueError, match=match) as err:
        build(tmp_path)
    assert 'val.json' in str(err.value) and 'instance #1' in str(err.value)


def test_malformed_files(tmp_path):
    F.write_vaw(tmp_path)
    path = tmp_path / 'data' / 'val.json'
    path.write_text('[{"image_id": 1,')
    with pytest.raises(ValueError, match='not valid JSON') as err:
        build(tmp_path)
    assert str(path) in str(err.value)
    path.write_text('{"instances": []}')
    with pytest.raises(ValueError, match='JSON list'):
        build(tmp_path)

    F.write_vaw(tmp_path / 'b')
    index = dict(F.VAW_ATTRIBUTES, red=0)  # two names on index 0, no 3
    F.write_json(tmp_path / 'b' / 'data' / 'attribute_index.json', index)
    with pytest.raises(ValueError, match='each used once'):
        build(tmp_path / 'b')

    with pytest.raises(FileNotFoundError, match='VAW layout'):
        build(tmp_path / 'c')


def test_zero_samples(tmp_path):
    files = {'test.json': [F.VAW_FILES['train_part2.json'][1]]}  # outside
    F.write_vaw(tmp_path, files=files)
    with pytest.raises(ValueError, match='no sample left'):
        build(tmp_path, 'test')


def test_cache_is_used_invalidated_and_written_atomically(
        tmp_path, monkeypatch, capfd):
    messages = []
    monkeypatch.setattr(cache_module, 'print_log',
                        lambda msg, **kw: messages.append(msg))
    F.write_vaw(tmp_path)
    build(tmp_path, cache=True)  # default place: <data_root>/.mmtwoway_cache
    cache_dir = tmp_path / '.mmtwoway_cache'
    assert any('cached the index' in m for m in messages)
    assert 'elapsed' in capfd.readouterr().out  # the progress bar
    names = sorted(os.listdir(cache_dir))
    assert not [n for n in names if n.endswith('.tmp')]
    assert len([n for n in names if n.startswith('vaw-instances-')]) == 1

    messages.clear()
    ds = build(tmp_path, cache=True)
    assert any('from the cache' in m for m in messages)
    assert 'elapsed' not in capfd.readouterr().out
    assert len(ds) == len(expected_ids('train'))

    # An edited source file is parsed again, and its new labels are used.
    files = copy.deepcopy(F.VAW_FILES)
    files['train_part1.json'][0]['positive_attributes'] = ['white']
    F.write_json(tmp_path / 'data' / 'train_part1.json',
                 files['train_part1.json'])
    messages.clear()
    ds = build(tmp_path, cache=True)
    assert any('cached the index' in m for m in messages)
    assert ds.get_data_info(0)['gt_label'] == [0]
    # Same sources, same cache file: overwritten, not added.
    names = os.listdir(cache_dir)
    assert len([n for n in names if n.startswith('vaw-instances-')]) == 1


def test_unwritable_cache_folder_is_not_fatal(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(cache_module, 'print_log',
                        lambda msg, **kw: warnings.append(msg))
    F.write_vaw(tmp_path)
    blocker = tmp_path / 'not_a_folder'
    blocker.write_text('')
    ds = build(tmp_path, 'test', cache=str(blocker / 'cache'))
    assert len(ds) == 2
    assert any('continuing without a cache' in m for m in warnings)


def test_corrupt_cache_is_rebuilt(tmp_path):
    F.write_vaw(tmp_path)
    build(tmp_path, 'test')
    [entry] = [
        p for p in (tmp_path / 'cache').iterdir()
        if p.name.startswith('vaw-instances-')
    ]
    entry.write_text('{"key": ')
    assert len(build(tmp_path, 'test')) == 2
    assert json.loads(entry.read_text())['payload']
