"""Tests of the mosaic builder and of tools/misc/make_demo_data.py."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmtwoway.datasets import CocoMultiLabel
from tools.misc import item_pools, make_demo_data
from tools.misc.item_pools import split_pool
from tools.misc.mosaic import (CocoWriter, build_mosaic_split, compose_canvas,
                               free_positions, geometric_class_probs,
                               place_items, resize_item)



def boxes_overlap(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


# --------------------------------------------------------------- helpers


def test_geometric_class_probs():
    p = geometric_class_probs(10, 10.0)
    assert p.shape == (10, ) and np.isclose(p.sum(), 1)
    assert np.all(np.diff(p) < 0)
    assert np.isclose(p[0] / p[-1], 10.0)
    ratios = p[1:] / p[:-1]
    assert np.allclose(ratios, ratios[0])  # geometric
    np.testing.assert_allclose(geometric_class_probs(4, 1.0), 0.25)
    assert geometric_class_probs(1).tolist() == [1.0]
    with pytest.raises(ValueError):
        geometric_class_probs(3, 0.5)


def test_split_pool_disjoint_stratified_deterministic():
    labels = np.repeat(np.arange(4), [10, 7, 3, 2])
    train, held = split_pool(labels, 1 / 3, seed=5)
    assert not set(train) & set(held)
    assert sorted(np.concatenate([train, held])) == list(range(len(labels)))
    for cls in range(4):  # every class on both sides
        assert (labels[train] == cls).any() and (labels[held] == cls).any()
    assert np.sum(labels[held] == 0) == 3
    again = split_pool(labels, 1 / 3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((train, held), again))
    with pytest.raises(ValueError):
        split_pool([0, 1, 1], 0.5, seed=0)  # class 0 has one item


def test_free_positions_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        occupied = rng.random((9, 11)) < 0.08
        h, w = rng.integers(1, 6, size=2)
        brute = [(y, x) for y in range(9 - h + 1) for x in range(11 - w + 1)
                 if not occupied[y:y + h, x:x + w].any()]
        assert [tuple(c) for c in free_positions(occupied, h, w)] == brute
    assert len(free_positions(np.zeros((4, 4), bool), 5, 1)) == 0


def test_place_items_non_overlapping_and_inside():
    rng = np.random.default_rng(1)
    for _ in range(50):
        sizes = [tuple(rng.integers(4, 9, size=2)) for _ in range(4)]
        boxes = place_items(20, sizes, rng)
        placed = [b for b in boxes if b is not None]
        assert boxes[0] is not None  # the first item always fits
        for (h, w), box in zip(sizes, boxes):
            if box is not None:
                x, y, bw, bh = box
                assert (bw, bh) == (w, h)
                assert 0 <= x and x + w <= 20 and 0 <= y and y + h <= 20
        for i, a in enumerate(placed):
            for b in placed[i + 1:]:
                assert not boxes_overlap(a, b)
    # No room at all: the item is reported as not placed.
    assert place_items(10, [(10, 10), (1, 1)], rng) == [[0, 0, 10, 10], None]


def test_compose_canvas_pixels():
    rng = np.random.default_rng(2)
    grey = np.full((3, 4), 200, np.uint8)
    colour = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3) + 1
    canvas, boxes = compose_canvas([grey, colour], 8, rng, background=7)
    assert canvas.shape == (8, 8, 3) and canvas.dtype == np.uint8
    mask = np.zeros((8, 8), bool)
    for item, (x, y, w, h) in zip([grey, colour], boxes):
        patch = canvas[y:y + h, x:x + w]
        expected = item[..., None] if item.ndim == 2 else item
        np.testing.assert_array_equal(patch, np.broadcast_to(expected,
                                                             patch.shape))
        mask[y:y + h, x:x + w] = True
    assert np.all(canvas[~mask] == 7)


def test_resize_item():
    item = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert resize_item(item, 13).shape == (13, 13)
    assert resize_item(np.stack([item] * 3, -1), 5).shape == (5, 5, 3)
    with pytest.raises(TypeError):
        resize_item(item.astype(float), 4)


def test_coco_writer_round_trip(tmp_path):
    writer = CocoWriter([dict(id=3, name='a'), dict(id=7, name='b')])
    img = writer.add_image('x.png', 16, 12)
    assert writer.next_image_id == 2
    writer.add_annotation(img, 7, [1, 2, 3, 4])
    writer.add_annotation(img, 3, [5, 6, 2, 2])
    with pytest.raises(ValueError, match='unknown category id 4'):
        writer.add_annotation(img, 4, [0, 0, 1, 1])
    with pytest.raises(ValueError, match='duplicate'):
        CocoWriter([dict(id=1, name='a'), dict(id=1, name='b')])
    path = str(tmp_path / 'sub' / 'inst.json')
    writer.dump(path)
    coco = COCO(path)
    assert coco.imgs[1] == dict(id=1, file_name='x.png', width=16, height=12)
    ann = coco.anns[1]
    assert ann['bbox'] == [1, 2, 3, 4] and ann['area'] == 12
    assert ann['iscrowd'] == 0 and ann['segmentation'] == []
    assert sorted(coco.getCatIds()) == [3, 7]
    assert coco.cats[3]['supercategory'] == 'a'


def test_build_mosaic_split(tmp_path):
    rng = np.random.default_rng(3)
    pool = rng.integers(1, 256, (12, 5, 5), dtype=np.uint8)
    pool_labels = np.arange(12) % 3
    writer = CocoWriter([dict(id=i, name=n) for i, n in [(2, 'a'), (4, 'b'),
                                                          (9, 'c')]])
    records = build_mosaic_split(
        pool,
        pool_labels,
        writer,
        (2, 4, 9),
        str(tmp_path / 'img'),
        num_images=15,
        rng=rng,
        canvas_size=20,
        max_items=3,
        item_size=(6, 8),
        class_probs=[0.6, 0.3, 0.1],
        file_prefix='s_')
    assert len(records) == len(writer.images) == 15
    anns_of = {}
    for ann in writer.annotations:
        anns_of.setdefault(ann['image_id'], []).append(ann)
    for rec in records:
        assert 1 <= len(rec['labels']) <= 3
        assert [pool_labels[s] for s in rec['sources']] == rec['labels']
        anns = anns_of[rec['image_id']]
        assert [(2, 4, 9)[c] for c in rec['labels']] == [
            a['category_id'] for a in anns
        ]
        canvas = np.asarray(Image.open(tmp_path / 'img' / rec['file_name']))
        assert rec['file_name'] == f's_{rec["image_id"]:06d}.png'
        for src, ann in zip(rec['sources'], anns):
            x, y, w, h = ann['bbox']
            np.testing.assert_array_equal(canvas[y:y + h, x:x + w, 0],
                                          resize_item(pool[src], w))
    with pytest.raises(ValueError, match='item_size'):
        build_mosaic_split(pool, pool_labels, writer, (2, 4, 9),
                           str(tmp_path), 1, rng, canvas_size=8,
                           item_size=(6, 9))


# -------------------------------------------------------- the demo tool


@pytest.fixture(scope='module')
def tool():
    return make_demo_data


SMALL = ['--num-train', '60', '--num-val', '30', '--seed', '3']


@pytest.fixture(scope='module')
def demo(tool, tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    summary = tool.main([str(out)] + SMALL)
    return out, summary


def test_demo_layout_and_coco_json(tool, demo):
    out, summary = demo
    assert summary['train']['images'] == 60
    assert summary['val']['images'] == 30
    for split, count in (('train', 60), ('val', 30)):
        coco = COCO(str(out / 'annotations' / f'instances_{split}.json'))
        assert len(coco.imgs) == count
        cats = coco.loadCats(sorted(coco.getCatIds()))
        assert [c['id'] for c in cats] == list(item_pools.DIGIT_CATEGORY_IDS)
        assert [c['name'] for c in cats] == list(item_pools.DIGIT_NAMES)
        assert np.any(np.diff(item_pools.DIGIT_CATEGORY_IDS) > 1)  # gaps
        for img in coco.imgs.values():
            path = out / split / img['file_name']
            with Image.open(path) as im:
                assert im.format == 'PNG' and im.mode == 'RGB'
                assert im.size == (img['width'], img['height']) == (32, 32)
            n = len(coco.getAnnIds(imgIds=img['id']))
            assert 1 <= n <= 3
        for ann in coco.anns.values():
            x, y, w, h = ann['bbox']
            assert 12 <= w == h <= 16 and ann['area'] == w * h
            assert ann['iscrowd'] == 0 and ann['segmentation'] == []


def test_demo_labels_match_drawn_digits_without_leakage(tool, demo):
    """Find every annotated crop among the resized digit scans, exactly."""
    out, _ = demo
    images, labels = item_pools.load_digit_pool()
    train_idx, val_idx = item_pools.digit_split(labels)
    assert not set(train_idx) & set(val_idx)
    assert len(train_idx) + len(val_idx) == len(labels) == 1797
    lookup = {}
    for side in range(12, 17):
        for i, img in enumerate(images):
            key = (side, resize_item(img, side).tobytes())
            lookup.setdefault(key, set()).add(i)
    digit_of_cat = dict(zip(item_pools.DIGIT_CATEGORY_IDS, range(10)))
    for split, allowed in (('train', set(train_idx)), ('val', set(val_idx))):
        coco = COCO(str(out / 'annotations' / f'instances_{split}.json'))
        for img in coco.imgs.values():
            canvas = np.asarray(Image.open(out / split / img['file_name']))
            drawn = np.zeros(canvas.shape[:2], bool)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
                x, y, w, h = ann['bbox']
                crop = canvas[y:y + h, x:x + w]
                assert np.all(crop == crop[..., :1])  # grey digits
                sources = lookup.get((w, crop[..., 0].tobytes()), set())
                assert sources, 'crop is not a resized digit scan'
                assert sources <= allowed, f'{split} uses foreign digits'
                assert {labels[s] for s in sources} == {
                    digit_of_cat[ann['category_id']]
                }
                drawn[y:y + h, x:x + w] = True
            assert np.all(canvas[~drawn] == 0)  # nothing unlabelled drawn


def test_demo_reads_as_coco_multilabel(tool, demo):
    out, summary = demo
    ds = CocoMultiLabel(
        data_root=str(out),
        ann_file='annotations/instances_val.json',
        data_prefix='val')
    assert ds.CLASSES == item_pools.DIGIT_NAMES
    assert len(ds) == 30
    mean = np.mean([len(ds.get_data_info(i)['gt_label'])
                    for i in range(len(ds))])
    assert np.isclose(mean, summary['val']['labels_per_image'])


def test_demo_class_frequencies_long_tailed(tool, tmp_path):
    tool.main([str(tmp_path), '--num-train', '400', '--num-val', '1'])
    data = json.loads((tmp_path / 'annotations' /
                       'instances_train.json').read_text())
    counts = np.zeros(10)
    for ann in data['annotations']:
        counts[item_pools.DIGIT_CATEGORY_IDS.index(ann['category_id'])] += 1
    assert counts[:3].sum() > 3 * counts[-3:].sum()


def test_demo_reproducible(tool, demo, tmp_path, capsys):
    out, _ = demo
    again = tmp_path / 'again'
    tool.main([str(again)] + SMALL)
    assert 'make_demo_data: 60 train + 30 val images' in capsys.readouterr(
    ).out
    files = sorted(p.relative_to(out) for p in out.rglob('*') if p.is_file())
    assert files == sorted(
        p.relative_to(again) for p in again.rglob('*') if p.is_file())
    for rel in files:
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel

    other = tmp_path / 'other'
    tool.main([str(other), '--num-train', '60', '--num-val', '30',
               '--seed', '4'])
    assert (other / 'train' / 'train_000001.png').read_bytes() != (
        out / 'train' / 'train_000001.png').read_bytes() or (
            other / 'annotations' / 'instances_train.json').read_bytes() != (
                out / 'annotations' / 'instances_train.json').read_bytes()


def test_demo_rejects_bad_sizes(tool, tmp_path):
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path), '--item-size', '20', '40'])
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path), '--max-items', '0'])
    assert not osp.exists(tmp_path / 'annotations')
