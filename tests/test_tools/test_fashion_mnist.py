"""IDX reading, Fashion-MNIST loading and tools/misc/make_mosaic_data.py.

Synthetic IDX files written here exercise the reader and the tool anywhere;
the tests on the real Debian files (``dataset-fashion-mnist``) skip when the
package is not installed (``make bench-data`` installs it).
"""
import gzip
import json
import os.path as osp
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmtwoway.datasets import CocoMultiLabel
from tools.misc.idx import (FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT,
                            load_fashion_mnist, read_idx)
from tools.misc.mosaic import resize_item
from tools.misc import mosaic_data

REAL = osp.isfile(osp.join(FASHION_MNIST_ROOT, 'train-images-idx3-ubyte.gz'))
needs_real = pytest.mark.skipif(
    not REAL, reason=f'Fashion-MNIST is not installed in {FASHION_MNIST_ROOT}'
    ' (apt-get install -y dataset-fashion-mnist, or make bench-data)')


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """Encode ``array`` as IDX by hand (big-endian header and payload)."""
    dtype = {0x08: '>u1', 0x0C: '>i4', 0x0D: '>f4'}[code]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(
        array.shape, '>u4').tobytes()
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, code: int = 0x08,
              gz: bool = True) -> Path:
    data = idx_bytes(array, code)
    if gz:
        path = path.with_name(path.name + '.gz')
        with gzip.open(path, 'wb') as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def fake_fashion(root: Path, n_train: int = 40, n_test: int = 20,
                 seed: int = 0):
    """A tiny Fashion-MNIST in the official file names, distinct items."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, stem, n in (('train', 'train', n_train),
                           ('test', 't10k', n_test)):
        images = rng.integers(1, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(root / f'{stem}-images-idx3-ubyte', images)
        write_idx(root / f'{stem}-labels-idx1-ubyte', labels)
        arrays[split] = (images, labels)
    return arrays


# ------------------------------------------------------------ read_idx


@pytest.mark.parametrize('gz', [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(1)
    cases = [(rng.integers(0, 256, (3, 4, 5), dtype=np.uint8), 0x08),
             (rng.integers(-2**31, 2**31 - 1, (7, ), dtype=np.int64), 0x0C),
             (rng.standard_normal((2, 3)).astype(np.float32), 0x0D)]
    for i, (array, code) in enumerate(cases):
        path = write_idx(tmp_path / f'a{i}', array, code, gz)
        out = read_idx(str(path))
        assert out.shape == array.shape
        assert out.dtype.isnative
        np.testing.assert_array_equal(out, array.astype(out.dtype))


def test_read_idx_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope'):
        read_idx(str(tmp_path / 'nope'))
    (tmp_path / 'png').write_bytes(b'\x89PNG\r\n\x1a\n')
    with pytest.raises(ValueError, match='not an IDX file'):
        read_idx(str(tmp_path / 'png'))
    (tmp_path / 'code').write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ValueError, match='unknown IDX type code 0x42'):
        read_idx(str(tmp_path / 'code'))
    full = idx_bytes(np.zeros((4, 2, 2), np.uint8), 0x08)
    (tmp_path / 'short').write_bytes(full[:-3])
    with pytest.raises(ValueError, match=r'shape \(4, 2, 2\).*truncated'):
        read_idx(str(tmp_path / 'short'))
    (tmp_path / 'hdr').write_bytes(full[:9])
    with pytest.raises(ValueError, match='3 dimensions'):
        read_idx(str(tmp_path / 'hdr'))
    (tmp_path / 'bad.gz').write_bytes(gzip.compress(full)[:-12])
    with pytest.raises(ValueError, match='bad.gz'):
        read_idx(str(tmp_path / 'bad.gz'))


# -------------------------------------------------- load_fashion_mnist


def test_load_fashion_mnist_synthetic(tmp_path):
    arrays = fake_fashion(tmp_path)
    for split in ('train', 'test'):
        images, labels = load_fashion_mnist(str(tmp_path), split)
        np.testing.assert_array_equal(images, arrays[split][0])
        np.testing.assert_array_equal(labels, arrays[split][1])
        assert labels.dtype == np.int64
    with pytest.raises(ValueError, match="split must be one of"):
        load_fashion_mnist(str(tmp_path), 'val')


def test_load_fashion_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='dataset-fashion-mnist'):
        load_fashion_mnist(str(tmp_path), 'train')
    fake_fashion(tmp_path)
    # uncompressed files are found too, and labels are checked
    (tmp_path / 't10k-labels-idx1-ubyte.gz').unlink()
    write_idx(tmp_path / 't10k-labels-idx1-ubyte', np.full(20, 10), gz=False)
    with pytest.raises(ValueError, match='label 10 at index 0'):
        load_fashion_mnist(str(tmp_path), 'test')
    write_idx(tmp_path / 't10k-labels-idx1-ubyte', np.zeros(19), gz=False)
    with pytest.raises(ValueError, match='expected 20 labels'):
        load_fashion_mnist(str(tmp_path), 'test')


@needs_real
def test_real_fashion_mnist():
    for split, n in (('train', 60000), ('test', 10000)):
        images, labels = load_fashion_mnist(split=split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(labels), [n // 10] * 10)
        # bright items on a black background, like the mosaics' canvas
        assert images[:, 0, 0].mean() < 5 and images.mean() > 50
    assert len(FASHION_MNIST_CLASSES) == 10


# ------------------------------------------------- make_mosaic_data.py


@pytest.fixture(scope='module')
def tool():
    return mosaic_data


def crop_sources(out: Path, split: str, lookup: dict):
    """Per annotation of ``split``: (category id, pool indices it matches);
    also checks that nothing unannotated is drawn."""
    coco = COCO(str(out / 'annotations' / f'instances_{split}.json'))
    found = []
    for img in coco.imgs.values():
        canvas = np.asarray(Image.open(out / split / img['file_name']))
        drawn = np.zeros(canvas.shape[:2], bool)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
            x, y, w, h = ann['bbox']
            crop = canvas[y:y + h, x:x + w, 0]
            found.append((ann['category_id'],
                          lookup.get((w, crop.tobytes()), set())))
            drawn[y:y + h, x:x + w] = True
        assert np.all(canvas[~drawn] == 0)
    return found


def test_fashion_mosaics_use_train_items_for_train_and_test_for_val(
        tool, tmp_path):
    arrays = fake_fashion(tmp_path / 'idx')
    out = tmp_path / 'out'
    summary = tool.main([
        str(out), '--source', 'fashion-mnist', '--data-root',
        str(tmp_path / 'idx'), '--num-train', '30', '--num-val', '15',
        '--canvas', '40', '--item-size', '14', '18', '--max-items', '3'
    ])
    assert summary['train']['images'] == 30 and summary['val']['images'] == 15
    assert summary['classes'] == list(FASHION_MNIST_CLASSES)
    for split, pool_split in (('train', 'train'), ('val', 'test')):
        images, labels = arrays[pool_split]
        lookup = {}
        for side in range(14, 19):
            for i, img in enumerate(images):
                lookup.setdefault((side, resize_item(img, side).tobytes()),
                                  set()).add(i)
        found = crop_sources(out, split, lookup)
        assert found
        for category_id, sources in found:
            assert sources, f'a {split} crop is no {pool_split} item'
            assert {labels[s] for s in sources} == {category_id - 1}
    ds = CocoMultiLabel(data_root=str(out),
                        ann_file='annotations/instances_val.json',
                        data_prefix='val')
    assert ds.CLASSES == FASHION_MNIST_CLASSES and len(ds) == 15


def test_fashion_mosaics_reproducible_and_checked(tool, tmp_path, capsys):
    fake_fashion(tmp_path / 'idx')
    args = ['--source', 'fashion-mnist', '--data-root',
            str(tmp_path / 'idx'), '--num-train', '8', '--num-val', '4']
    tool.main([str(tmp_path / 'a')] + args)
    tool.main([str(tmp_path / 'b')] + args)
    assert 'make_mosaic_data: 8 train + 4 val images, 10 classes ' \
        '(Fashion-MNIST)' in capsys.readouterr().out
    files = sorted(p.relative_to(tmp_path / 'a')
                   for p in (tmp_path / 'a').rglob('*') if p.is_file())
    assert len(files) == 2 + 8 + 4
    for rel in files:
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' /
                                                      rel).read_bytes()
    with Image.open(tmp_path / 'a' / 'train' / 'train_000001.png') as im:
        assert im.size == (56, 56)  # the fashion-mnist default canvas
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'c'), '--source', 'digits', '--data-root',
                   str(tmp_path / 'idx')])
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'c'), '--source', 'fashion-mnist',
                   '--imbalance', '0.5'])
    with pytest.raises(FileNotFoundError, match='dataset-fashion-mnist'):
        tool.main([str(tmp_path / 'c'), '--source', 'fashion-mnist',
                   '--data-root', str(tmp_path / 'missing')])


def test_digits_source_matches_make_demo_data(tool, tmp_path):
    common = ['--num-train', '12', '--num-val', '6', '--seed', '5']
    tool.main([str(tmp_path / 'm'), '--source', 'digits'] + common)
    mosaic_data.demo_main([str(tmp_path / 'd')] + common)
    for rel in ('annotations/instances_train.json', 'val/val_000006.png'):
        assert (tmp_path / 'm' / rel).read_bytes() == (tmp_path / 'd' /
                                                      rel).read_bytes()


@needs_real
def test_real_fashion_mosaics_long_tailed(tool, tmp_path):
    tool.main([str(tmp_path), '--source', 'fashion-mnist', '--num-train',
               '300', '--num-val', '5', '--canvas', '48'])
    data = json.loads((tmp_path / 'annotations' /
                       'instances_train.json').read_text())
    counts = np.bincount([a['category_id'] - 1 for a in data['annotations']],
                         minlength=10)
    assert counts[:3].sum() > 3 * counts[-3:].sum()
    names = [c['name'] for c in sorted(data['categories'],
                                       key=lambda c: c['id'])]
    assert names == list(FASHION_MNIST_CLASSES)
