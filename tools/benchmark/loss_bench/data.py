"""The loss benchmark's data: Fashion-MNIST and digit scans as arrays.

The mosaics themselves are written by the mosaic tool's own code
(:mod:`tools.misc.mosaic_data`, called from ``training.py``).
"""
from typing import List, Sequence, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset

from tools.misc.idx import (FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT,
                            load_fashion_mnist)
from tools.misc.item_pools import digits_item_pool
from tools.misc.mosaic import resize_item

__all__ = [
    'FASHION_MNIST_CLASSES', 'FASHION_MNIST_ROOT', 'NUM_CLASSES', 'MEAN',
    'STD', 'ArrayDataset', 'fashion_arrays',
    'digit_arrays'
]

NUM_CLASSES = len(FASHION_MNIST_CLASSES)
# Fashion-MNIST pixel statistics (0..255): the items of pretraining and of
# the mosaics are normalised alike, as ImageNet statistics are for COCO.
MEAN, STD = 72.94, 90.02

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class ArrayDataset(BaseDataset):
    """Single-label images held in memory, as an mmpretrain dataset.

    Args:
        images (np.ndarray): (N, h, w) uint8 grey images; they are given
            three identical channels like the mosaics' RGB PNGs.
        labels (np.ndarray): (N,) class indices.
        pipeline (Sequence[dict]): Transforms; PackInputs at the end.

    Raises:
        ValueError: If ``images`` and ``labels`` differ in length.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray,
                 pipeline: Sequence[dict] = (dict(type='PackInputs'), )):
        if len(images) != len(labels):
            raise ValueError(f'{len(images)} images but {len(labels)} labels')
        self._arrays = (images, labels)
        super().__init__(
            ann_file='',
            metainfo=dict(classes=FASHION_MNIST_CLASSES),
            pipeline=list(pipeline))

    def load_data_list(self) -> List[dict]:
        """One ``img`` (h, w, 3) and ``gt_label`` per image."""
        images, labels = self._arrays
        return [
            dict(img=np.repeat(img[..., None], 3, axis=2), gt_label=int(lab))
            for img, lab in zip(images, labels)
        ]


def fashion_arrays(root: str, num_train: int, num_test: int) -> Arrays:
    """The first images of Fashion-MNIST's train and test splits.

    Args:
        root (str): Folder with the four IDX files.
        num_train (int): Train images to keep.
        num_test (int): Test images to keep.

    Returns:
        tuple: Train images (N, 28, 28) uint8 and labels (N,), then the
        same for the test images.
    """
    train = load_fashion_mnist(root, 'train')
    test = load_fashion_mnist(root, 'test')
    return (train[0][:num_train], train[1][:num_train], test[0][:num_test],
            test[1][:num_test])


def digit_arrays(side: int) -> Arrays:
    """scikit-learn's digit scans, upscaled to ``side`` x ``side``, in the
    fixed train / held-out split of the digit mosaics.

    Args:
        side (int): Image side in pixels (Fashion-MNIST's 28, so that a
            Fashion-MNIST backbone sees digits at its own scale).

    Returns:
        tuple: Train images (N, side, side) uint8 and labels (N,), then the
        same for the held-out scans.
    """
    pool = digits_item_pool()
    return (np.stack([resize_item(img, side) for img in pool.train_images]),
            pool.train_labels,
            np.stack([resize_item(img, side)
                      for img in pool.held_out_images]),
            pool.held_out_labels)
