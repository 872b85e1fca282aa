"""VOCMultiLabel on fixtures in the exact VOCdevkit 2007 / 2012 layout."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmpretrain.registry import DATASETS
from mmtwoway.datasets import VOCMultiLabel
from mmtwoway.evaluation import mean_ap

import original_formats as F
from label_checks import (assert_ignored_entries_ignored, evaluate,
                          packed_samples)

EXPECTED07 = F.voc_expected(F.VOC07_OBJECTS)
TEST_PACK = dict(
    type='PackInputs',
    meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape',
               'gt_label_difficult'))


def expected_target(ids, expected, ignore_difficult=True):
    """1 positive, -1 difficult-only (or 0), 0 otherwise."""
    target = torch.zeros(len(ids), len(F.VOC_CLASSES))
    for row, img_id in enumerate(ids):
        pos, _, difficult_only = expected[img_id]
        target[row, difficult_only] = -1 if ignore_difficult else 0
        target[row, pos] = 1
    return target


@pytest.mark.parametrize('difficult_as', ['negative', 'ignore'])
def test_trainval_samples(tmp_path, difficult_as):
    root = F.write_voc(tmp_path)
    ds = VOCMultiLabel(
        data_root=root, split='trainval', difficult_as=difficult_as)
    ids = F.VOC07_SPLITS['trainval']
    assert ds.CLASSES == F.VOC_CLASSES and len(ds) == len(ids)
    target = expected_target(ids, EXPECTED07, difficult_as == 'ignore')
    for i, img_id in enumerate(ids):
        info = ds.get_data_info(i)
        pos, difficult, difficult_only = EXPECTED07[img_id]
        assert info['img_path'] == osp.join(root, 'JPEGImages',
                                            f'{img_id}.jpg')
        assert info['gt_label'] == pos
        assert info['gt_label_difficult'] == difficult
        if difficult_as == 'negative':
            # Fully labelled: only gt_label, as mmpretrain's VOC.
            assert 'gt_score' not in info and 'ignored_label' not in info
        else:
            # Every sample gets a gt_score, even without difficult objects.
            assert info['ignored_label'] == difficult_only
            np.testing.assert_array_equal(info['gt_score'], target[i].numpy())


def test_ignored_difficult_reach_loss_and_metric_as_ignored(tmp_path):
    root = F.write_voc(tmp_path)
    ds = VOCMultiLabel(
        data_root=root,
        split='trainval',
        difficult_as='ignore',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(8, 8)),
            dict(type='PackInputs')
        ])
    assert_ignored_entries_ignored(
        packed_samples(ds),
        expected_target(F.VOC07_SPLITS['trainval'], EXPECTED07))


def test_metric_ignores_difficult_only_classes_at_test(tmp_path):
    """Default training treatment, test pipeline keeping difficult labels."""
    root = F.write_voc(tmp_path)
    ds = VOCMultiLabel(
        data_root=root,
        split='trainval',
        test_mode=True,
        pipeline=[dict(type='LoadImageFromFile'), TEST_PACK])
    samples = packed_samples(ds)
    ids = F.VOC07_SPLITS['trainval']
    scores = torch.randn(
        len(ids),
        len(F.VOC_CLASSES),
        generator=torch.Generator().manual_seed(1))
    target = expected_target(ids, EXPECTED07)
    # Difficult-only entries outrank everything: harmless only if ignored.
    scores[target < 0] = 10.
    got = evaluate(samples, scores)
    assert got['multi-label/mAP@class'] == pytest.approx(
        float(mean_ap(scores, target, 'class')))
    assert got['multi-label/mAP@sample'] == pytest.approx(
        float(mean_ap(scores, target, 'sample')))
    # Counting them as negatives gives other numbers.
    as_negative = evaluate(samples, scores, difficult_as='negative')
    assert as_negative['multi-label/mAP@sample'] < got[
        'multi-label/mAP@sample']


def test_test_split_and_missing_difficult_tag(tmp_path):
    root = F.write_voc(tmp_path)
    ds = DATASETS.build(
        dict(
            type='VOCMultiLabel', data_root=root, split='test',
            test_mode=True))
    [img_id] = F.VOC07_SPLITS['test']
    info = ds.get_data_info(0)
    # bicycle has no <difficult> tag: a plain positive.
    assert info['gt_label'] == EXPECTED07[img_id][0]
    assert F.VOC_CLASSES.index('bicycle') in info['gt_label']
    assert info['gt_label_difficult'] == EXPECTED07[img_id][1]


def test_voc2012_ids(tmp_path):
    root = F.write_voc(tmp_path, 2012)
    expected = F.voc_expected(F.VOC12_OBJECTS)
    for split, ids in F.VOC12_SPLITS.items():
        ds = VOCMultiLabel(data_root=root, split=split, difficult_as='ignore')
        assert [
            osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(len(ds))
        ] == [f'{i}.jpg' for i in ids]
        for i, img_id in enumerate(ids):
            info = ds.get_data_info(i)
            assert info['gt_label'] == expected[img_id][0]
            assert info['ignored_label'] == expected[img_id][2]


def test_missing_image_error_or_counted_skip(tmp_path):
    root = F.write_voc(tmp_path, skip_images=['000009'])
    with pytest.raises(FileNotFoundError) as err:
        VOCMultiLabel(data_root=root)
    assert '000009.jpg' in str(err.value) and 'trainval.txt' in str(err.value)
    ds = VOCMultiLabel(data_root=root, missing_images='skip')
    assert [
        osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))
    ] == ['000005.jpg', '000007.jpg', '000012.jpg']
    assert ds.skipped.counts() == {'skipped, image not found': 1}
    with pytest.raises(ValueError, match='missing_images must be'):
        VOCMultiLabel(data_root=root, missing_images='ignore')


def _replace_in_xml(root, img_id, old, new):
    path = osp.join(root, 'Annotations', f'{img_id}.xml')
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, 'w') as f:
        f.write(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize('old, new, match', [
    ('<name>horse</name>', '<name>pony</name>', "name 'pony'"),
    ('<name>horse</name>', '<pose>x</pose>', "name ''"),
    ('<difficult>0</difficult>', '<difficult>no</difficult>',
     'expected 0 or 1'),
    ('</annotation>', '', 'not valid XML'),
])
def test_bad_annotation(tmp_path, old, new, match):
    root = F.write_voc(tmp_path)
    path = _replace_in_xml(root, '000009', old, new)
    with pytest.raises(ValueError, match=match) as err:
        VOCMultiLabel(data_root=root)
    assert path in str(err.value)


def test_missing_files_and_zero_samples(tmp_path):
    root = F.write_voc(tmp_path)
    with pytest.raises(FileNotFoundError, match='VOCdevkit layout'):
        VOCMultiLabel(data_root=root, split='val')
    (tmp_path / 'VOCdevkit' / 'VOC2007' / 'Annotations'
     / '000007.xml').unlink()
    with pytest.raises(FileNotFoundError) as err:
        VOCMultiLabel(data_root=root)
    assert '000007.xml' in str(err.value)
    assert 'trainval.txt' in str(err.value)
    with open(osp.join(root, 'ImageSets', 'Main', 'test.txt'), 'w'):
        pass
    with pytest.raises(ValueError, match='no sample left'):
        VOCMultiLabel(data_root=root, split='test', test_mode=True)
    with pytest.raises(ValueError, match='difficult_as must be'):
        VOCMultiLabel(data_root=root, difficult_as='positive')
