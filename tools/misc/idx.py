"""IDX files (the MNIST / Fashion-MNIST format) and Fashion-MNIST.

Fashion-MNIST (Xiao et al., 2017) has 70,000 real 28x28 grey photos of
clothing in 10 classes: 60,000 for training and 10,000 for testing. Debian
ships it offline as ``dataset-fashion-mnist`` (``apt-get install -y
dataset-fashion-mnist``), which puts the four gzipped IDX files of the
official release in :data:`FASHION_MNIST_ROOT`.

The IDX format: a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``,
then ``ndim`` big-endian uint32 dimensions, then the values in C order
(big-endian for multi-byte types). This module needs numpy only (no torch),
so the data tools that use it start fast.
"""
import gzip
import os.path as osp
from typing import Tuple

import numpy as np

#: Where ``apt-get install dataset-fashion-mnist`` puts the files.
FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist'

#: Class names in label order (the official release's).
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress',
                         'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                         'Ankle boot')

#: File stems of each split: images, labels.
FASHION_MNIST_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype('>u1'),
    0x09: np.dtype('>i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file, gzipped (``.gz``) or not.

    Args:
        path (str): The file.

    Returns:
        np.ndarray: The array, in native byte order, of the shape the header
        declares.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the header is not IDX or the payload does not have
            the size the header declares (a truncated download, say).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'IDX file {path} does not exist')
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip: corrupt or truncated stream
        raise ValueError(f'cannot read IDX file {path}: {err}') from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f'{path} is not an IDX file: its first bytes '
                         f'{data[:4]!r} are not 0x00 0x00 <type> <ndim>')
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f'{path}: unknown IDX type code {code:#04x}; '
                         f'expected one of {sorted(_IDX_DTYPES)}')
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f'{path}: header declares {ndim} dimensions but the '
                         f'file has only {len(data)} bytes')
    shape = tuple(int(d) for d in np.frombuffer(data, '>u4', ndim, 4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f'{path}: header declares shape {shape} '
                         f'({expected} bytes of data) but the file holds '
                         f'{len(data) - header}; the file is truncated or '
                         'corrupt')
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder('='))


def _find(root: str, stem: str) -> str:
    """The path of ``stem`` or ``stem.gz`` in ``root``."""
    for name in (stem + '.gz', stem):
        path = osp.join(root, name)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'Fashion-MNIST file {stem}[.gz] not found in {root}. Install the '
        'Debian package (`apt-get install -y dataset-fashion-mnist`, or '
        '`make bench-data`) or point the data root at a folder holding the '
        'four IDX files of the official release.')


def load_fashion_mnist(root: str = FASHION_MNIST_ROOT,
                       split: str = 'train') -> Tuple[np.ndarray, np.ndarray]:
    """Load one split of Fashion-MNIST.

    Args:
        root (str): Folder with the IDX files, gzipped or not. Defaults to
            the Debian package's :data:`FASHION_MNIST_ROOT`.
        split (str): ``'train'`` (60,000 images) or ``'test'`` (10,000).

    Returns:
        tuple[np.ndarray, np.ndarray]: (N, 28, 28) uint8 images (the item
        bright on a black background) and their (N,) int64 labels 0..9.
    """
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f'split must be one of {sorted(FASHION_MNIST_FILES)}'
                         f', got {split!r}')
    image_path, label_path = (_find(root, stem)
                              for stem in FASHION_MNIST_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f'{image_path}: expected (N, h, w) uint8 images, got '
                         f'shape {images.shape} of {images.dtype}')
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f'{label_path}: expected {len(images)} labels (one '
                         f'per image of {image_path}), got shape '
                         f'{labels.shape}')
    labels = labels.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= len(FASHION_MNIST_CLASSES)))
    if len(bad):
        raise ValueError(f'{label_path}: label {labels[bad[0]]} at index '
                         f'{bad[0]} is outside 0..'
                         f'{len(FASHION_MNIST_CLASSES) - 1}')
    return images, labels
