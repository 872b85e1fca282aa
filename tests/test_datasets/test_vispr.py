"""VISPR read from a fixture in the exact VISPR2017 release layout."""
import json
import os
import os.path as osp

import pytest

from mmpretrain.registry import DATASETS
from mmtwoway.datasets import VISPR
from mmtwoway.datasets import cache as cache_module

import original_formats as F
from label_checks import packed_samples


def build(root, ann_file=('train2017.txt', 'val2017.txt'), **kwargs):
    kwargs.setdefault('cache', str(root / 'cache'))
    return VISPR(data_root=str(root), ann_file=ann_file, **kwargs)


def expected_ids(splits):
    return [img_id for split in splits for img_id, _ in F.VISPR_IMAGES[split]]


@pytest.mark.parametrize('splits', [('train2017', 'val2017'), ('test2017', )])
def test_every_sample(tmp_path, splits):
    F.write_vispr(tmp_path)
    ds = build(tmp_path, [f'{s}.txt' for s in splits])
    # Class index = the idx column; the row without idx is left out.
    assert ds.CLASSES == F.VISPR_CLASSES
    assert ds.metainfo['descriptions'][3] == 'Legal involvement'
    ids = expected_ids(splits)
    assert len(ds) == len(ids)
    for i, img_id in enumerate(ids):
        info = ds.get_data_info(i)
        split = splits[0] if img_id in dict(F.VISPR_IMAGES[splits[0]]) \
            else splits[-1]
        assert info['img_id'] == img_id
        assert info['img_path'] == osp.join(
            str(tmp_path), 'images', split, f'{img_id}.jpg')
        assert info['ann_path'] == osp.join(
            str(tmp_path), 'annotations', split, f'{img_id}.json')
        assert info['gt_label'] == F.VISPR_EXPECTED[img_id]
        assert 'gt_score' not in info  # fully labelled


def test_pipeline_packs_the_labels(tmp_path):
    F.write_vispr(tmp_path)
    ds = DATASETS.build(
        dict(
            type='VISPR',
            data_root=str(tmp_path),
            ann_file='test2017.txt',
            test_mode=True,
            cache=False,
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='PackInputs')]))
    samples = packed_samples(ds)
    assert [s.gt_label.tolist() for s in samples
            ] == [F.VISPR_EXPECTED[i] for i in expected_ids(['test2017'])]
    assert tuple(samples[0].ori_shape) == (16, 20)


def test_integer_id_and_absent_id(tmp_path):
    F.write_vispr(tmp_path)
    path = tmp_path / 'annotations' / 'test2017' / '2017_30000001.json'
    data = json.loads(path.read_text())
    data['id'] = 30000001
    path.write_text(json.dumps(data))
    path = tmp_path / 'annotations' / 'test2017' / '2017_30000002.json'
    data = json.loads(path.read_text())
    del data['id']
    path.write_text(json.dumps(data))
    ds = build(tmp_path, 'test2017.txt')
    assert [ds.get_data_info(i)['img_id']
            for i in range(2)] == ['30000001', '2017_30000002']


def test_cache_first_run_then_reuse_then_rebuild(tmp_path, monkeypatch,
                                                 capsys):
    messages = []
    monkeypatch.setattr(cache_module, 'print_log',
                        lambda msg, **kw: messages.append(msg))
    F.write_vispr(tmp_path)
    build(tmp_path, cache=True)
    assert 'elapsed' in capsys.readouterr().out  # first run: progress bar
    assert any('cached the index' in m for m in messages)
    messages.clear()
    build(tmp_path, cache=True)
    assert 'elapsed' not in capsys.readouterr().out
    assert any('from the cache' in m for m in messages)
    assert any(str(tmp_path / '.mmtwoway_cache') in m for m in messages)

    # One of the 22k small files is edited: the index is rebuilt.
    path = tmp_path / 'annotations' / 'val2017' / '2017_20000017.json'
    data = json.loads(path.read_text())
    data['labels'] = ['a0_safe']
    path.write_text(json.dumps(data))
    os.utime(path, ns=(1, 1))  # even with an old mtime (size changed)
    messages.clear()
    ds = build(tmp_path, cache=True)
    assert any('cached the index' in m for m in messages)
    assert ds.get_data_info(2)['gt_label'] == [0]


def test_missing_image_error_or_counted_skip(tmp_path):
    F.write_vispr(tmp_path, skip_images=['2017_10002345'])
    with pytest.raises(FileNotFoundError) as err:
        build(tmp_path)
    msg = str(err.value)
    assert '2017_10002345.json' in msg and '2017_10002345.jpg' in msg
    ds = build(tmp_path, missing_images='skip')
    assert [ds.get_data_info(i)['img_id']
            for i in range(len(ds))] == ['2017_10001018', '2017_20000017']
    assert ds.skipped.counts() == {'skipped, image not found': 1}


def test_unknown_label(tmp_path):
    F.write_vispr(tmp_path)
    path = tmp_path / 'annotations' / 'train2017' / '2017_10002345.json'
    data = json.loads(path.read_text())
    data['labels'].append('a200_draft')  # the row without idx
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as err:
        build(tmp_path)
    assert str(path) in str(err.value) and "'a200_draft'" in str(err.value)


@pytest.mark.parametrize('content, match', [
    ('{"id": "x", "labels": [', 'not valid JSON'),
    ('["a0_safe"]', 'JSON object'),
    ('{"id": "x", "labels": ["a0_safe"]}', 'image_path'),
    ('{"id": "x", "image_path": "i.jpg", "labels": "a0_safe"}', 'labels'),
])
def test_malformed_annotation(tmp_path, content, match):
    F.write_vispr(tmp_path)
    path = tmp_path / 'annotations' / 'val2017' / '2017_20000017.json'
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        build(tmp_path)
    assert str(path) in str(err.value)


def test_missing_annotation_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='VISPR2017 layout'):
        build(tmp_path)
    F.write_vispr(tmp_path)
    (tmp_path / 'annotations' / 'val2017' / '2017_20000017.json').unlink()
    with pytest.raises(FileNotFoundError) as err:
        build(tmp_path)
    assert 'val2017.txt' in str(err.value)
    assert '2017_20000017.json' in str(err.value)


@pytest.mark.parametrize('rows, match', [
    ('idx\tattribute\n0\ta0_safe\n', r"column\(s\) \['attribute_id'\]"),
    ('idx\tattribute_id\n0\ta0_safe\n2\ta1_age_approx\n', '0..N-1'),
    ('idx\tattribute_id\n0\ta0_safe\n0\ta1_age_approx\n', 'not a new'),
    ('idx\tattribute_id\n0\ta0_safe\n1\ta0_safe\n', 'repeated'),
])
def test_bad_attributes_file(tmp_path, rows, match):
    F.write_vispr(tmp_path)
    (tmp_path / 'attributes.tsv').write_text(rows)
    with pytest.raises(ValueError, match=match) as err:
        build(tmp_path)
    assert 'attributes.tsv' in str(err.value)


def test_zero_samples_and_classes(tmp_path):
    F.write_vispr(tmp_path)
    (tmp_path / 'empty.txt').write_text('\n')
    with pytest.raises(ValueError, match='no sample left'):
        build(tmp_path, 'empty.txt')
    with pytest.raises(ValueError, match='differ from the 6 classes'):
        build(tmp_path, classes=list(F.VISPR_CLASSES[:5]))
