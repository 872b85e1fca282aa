"""OpenImagesMultiLabel on a generated tree in the published file layout."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmpretrain.registry import DATASETS
from mmtwoway.datasets import OpenImagesMultiLabel
from tools.misc import make_openimages_data as gen

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LABELS = gen.LABEL_FILES['train']
IMAGES = gen.IMAGE_FILES['train']


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp('oi')
    gen.make(str(root), images=40, classes=30, files='jpeg', traps=True,
             machine=True)
    return root


def build(root, **kwargs):
    kwargs.setdefault('cache', str(root / 'cache'))
    kwargs.setdefault('image_files', IMAGES)
    return OpenImagesMultiLabel(data_root=str(root), **kwargs)


def expected(root):
    with open(root / 'expected.json') as f:
        return json.load(f)


def trainable(root):
    with open(root / gen.TRAINABLE_FILE) as f:
        return [line.strip() for line in f if line.strip()]


@pytest.mark.parametrize('unannotated', ['ignore', 'negative'])
def test_labels_entry_by_entry(tree, unannotated):
    ds = build(tree, unannotated=unannotated)
    truth, mids = expected(tree)['labels'], trainable(tree)
    fill = -1.0 if unannotated == 'ignore' else 0.0
    assert len(ds) == len(truth)  # the listed image without labels is out
    assert ds.mids == tuple(mids)
    seen = set()
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        want = np.full(len(mids), fill, np.float32)
        for mid, value in truth[info['img_id']].items():
            want[mids.index(mid)] = value
        np.testing.assert_array_equal(info['gt_score'], want)
        assert info['gt_label'] == np.flatnonzero(want == 1).tolist()
        assert info['rotation'] == expected(tree)['rotation'][info['img_id']]
        seen.add(info['img_id'])
    assert seen == set(truth)


def test_stats_count_the_traps(tree):
    ds = build(tree)
    truth = expected(tree)['labels']
    conflicts = sum(v == -1 for labels in truth.values()
                    for v in labels.values())
    assert ds.stats['conflicts'] == conflicts > 0
    assert len(ds.stats['conflict_examples']) == min(conflicts, 5)
    assert ds.stats['duplicate_rows_merged'] >= conflicts
    assert ds.stats['untrainable_rows'] > 0
    assert ds.stats['human_rows_of_unlisted_images'] == 1
    assert ds.stats['listed_images_without_label'] == 1
    assert ds.stats['labels'] == sum(map(len, truth.values()))


def test_without_image_list_takes_every_labelled_image(tree):
    ds = build(tree, image_files=None, missing_images='skip')
    # The unlisted image has labels but no file: skipped and counted.
    assert ds.skipped.counts() == {'skipped, image not found': 1}
    assert len(ds) == len(expected(tree)['labels'])
    assert all(ds.get_data_info(i)['rotation'] == 0 for i in range(len(ds)))


@pytest.mark.parametrize('degrees,white', [(0, 'left'), (90, 'bottom'),
                                           (180, 'right'), (270, 'top')])
def test_rotation_applied_to_pixels(tree, degrees, white):
    ds = build(tree, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='OpenImagesRotate')
    ])
    idx = next(i for i in range(len(ds))
               if ds.get_data_info(i)['rotation'] == degrees)
    img = ds[idx]['img'].astype(float)
    h, w = img.shape[:2]
    assert (h, w) == ((16, 32) if degrees in (0, 180) else (32, 16))
    halves = dict(left=img[:, :w // 2], right=img[:, w // 2:],
                  top=img[:h // 2], bottom=img[h // 2:])
    opposite = dict(left='right', right='left', top='bottom',
                    bottom='top')[white]
    assert halves[white].mean() > 200 > 50 > halves[opposite].mean()


def test_missing_image_error_and_skip(tmp_path):
    gen.make(str(tmp_path), images=6, classes=5, files='jpeg')
    ds = build(tmp_path)
    gone = ds.get_data_info(2)['img_id']
    os.unlink(tmp_path / 'train' / f'{gone}.jpg')
    with pytest.raises(FileNotFoundError, match=f'{gone}.jpg.*missing_'):
        build(tmp_path)
    ds = build(tmp_path, missing_images='skip')
    assert len(ds) == 5 and ds.skipped.counts() == {
        'skipped, image not found': 1}
    ids = [ds.get_data_info(i)['img_id'] for i in range(len(ds))]
    assert gone not in ids
    # The labels stay with their images after the removal.
    full = build(tmp_path, missing_images='skip', cache=False)
    for i in range(len(ds)):
        assert ds.get_data_info(i)['img_id'] == full.get_data_info(i)[
            'img_id']
        np.testing.assert_array_equal(ds.get_data_info(i)['gt_score'],
                                      full.get_data_info(i)['gt_score'])


def _bad(tmp_path, row, match):
    gen.make(str(tmp_path), images=5, classes=5)
    path = tmp_path / LABELS
    with open(path, 'a') as f:
        f.write(row + '\n')
    line = sum(1 for _ in open(path))
    with pytest.raises(ValueError, match=f'{LABELS}", line {line}: {match}'):
        build(tmp_path)


def test_unknown_class_id_names_file_and_line(tmp_path):
    _bad(tmp_path, '0123456789abcdef,verification,/m/0zzzz,1',
         'unknown class id')


def test_confidence_outside_0_1_names_file_and_line(tmp_path):
    _bad(tmp_path, f'0123456789abcdef,verification,{gen.mid(0)},0.7',
         "Confidence '0.7'")


def test_malformed_id_names_file_and_line(tmp_path):
    _bad(tmp_path, f'0x23456789abcdef,verification,{gen.mid(0)},1',
         'malformed ImageID')


def test_cache_memory_maps_and_rebuilds(tmp_path):
    gen.make(str(tmp_path), images=8, classes=6, files='link')
    first = build(tmp_path)
    second = build(tmp_path)
    assert isinstance(second.label_classes, np.memmap)
    assert second.label_classes.dtype == np.int16
    assert second.label_values.dtype == np.int8
    np.testing.assert_array_equal(first.label_classes, second.label_classes)
    # An edited label file is parsed again.
    with open(tmp_path / LABELS) as f:
        lines = f.readlines()
    with open(tmp_path / LABELS, 'w') as f:
        f.writelines(lines[:-1])
    third = build(tmp_path)
    assert third.stats['labels'] == second.stats['labels'] - 1


def test_pickle_maps_the_cache_again(tmp_path):
    import pickle
    gen.make(str(tmp_path), images=300, classes=50, files='link')
    ds = build(tmp_path)
    ds = build(tmp_path)  # from the cache: memory-mapped
    blob = pickle.dumps(ds)
    assert len(blob) < ds.index_info()['bytes']  # the arrays stay out
    copy = pickle.loads(blob)
    assert isinstance(copy.label_classes, np.memmap)
    for i in (0, 150, len(ds) - 1):
        np.testing.assert_array_equal(copy.get_data_info(i)['gt_score'],
                                      ds.get_data_info(i)['gt_score'])


def test_headerless_class_file_and_no_trainable_list(tmp_path):
    gen.make(str(tmp_path), images=4, classes=6, files='link')
    with open(tmp_path / gen.CLASS_FILE) as f:
        rows = f.readlines()[1:]
    with open(tmp_path / 'class-descriptions.csv', 'w') as f:
        f.writelines(rows)
    ds = build(tmp_path, class_file='class-descriptions.csv',
               trainable_file=None)
    assert len(ds.CLASSES) == len(rows)  # every described class
    assert ds.CLASSES[0] == 'class 0'


def test_machine_labels_threshold_and_human_override(tree):
    human = build(tree)
    both = build(tree, machine_label_files=gen.MACHINE_FILES['train'],
                 machine_threshold=0.5)
    assert both.stats['machine_below_threshold'] > 0
    # Generated machine rows are distinct: every kept one not overridden
    # by a human label adds one label.
    assert both.stats['labels'] == (
        human.stats['labels'] + both.stats['machine_rows_kept'] -
        both.stats['machine_labels_overridden_by_human'])
    for i in range(len(human)):
        h, b = human.get_data_info(i), both.get_data_info(i)
        assert h['img_id'] == b['img_id']
        known = h['gt_score'] >= 0
        np.testing.assert_array_equal(h['gt_score'][known],
                                      b['gt_score'][known])
        assert set(np.flatnonzero(b['gt_score'] == 1)) >= set(
            np.flatnonzero(h['gt_score'] == 1))


@pytest.mark.slow
def test_registered_and_generator_cli(tmp_path):
    out = tmp_path / 'cli'
    run = subprocess.run(
        [sys.executable, 'tools/misc/make_openimages_data.py', str(out),
         '--images', '3', '--classes', '4', '--split', 'test',
         '--files', 'jpeg'],
        cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)['labels'].endswith(
        'test-annotations-human-imagelabels.csv')
    ds = DATASETS.build(
        dict(type='OpenImagesMultiLabel', data_root=str(out),
             label_files=gen.LABEL_FILES['test'], img_dirs='test',
             cache=False))
    assert len(ds) == 3 and len(ds.CLASSES) == 4


@pytest.mark.slow
def test_dataset_stats_reports_the_index(tree, tmp_path):
    out = tmp_path / 'stats.json'
    run = subprocess.run(
        [sys.executable, 'tools/misc/dataset_stats.py',
         'configs/openimages/twoway_openimages_r50.py', '--splits', 'train',
         '--out', str(out), '--cfg-options',
         f'train_dataloader.dataset.data_root={tree}',
         f'train_dataloader.dataset.cache={tree / "cache"}'],
        cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr
    assert 'label index' in run.stdout and 'conflicts: ' in run.stdout
    stats = json.loads(out.read_text())['train']
    truth, mids = expected(tree)['labels'], trainable(tree)
    names = [f'class {int(m.split("c")[-1])}' for m in mids]
    assert list(stats['per_class']) == names
    for mid, name in zip(mids, names):
        values = [labels[mid] for labels in truth.values() if mid in labels]
        want = dict(positives=values.count(1), negatives=values.count(0),
                    ignored=len(truth) - values.count(1) - values.count(0))
        assert stats['per_class'][name] == want
    assert stats['index']['stats']['conflicts'] == build(tree).stats[
        'conflicts']
    assert stats['samples'] == len(truth)
