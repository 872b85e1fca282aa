"""Labelled items that mosaics are drawn from: the pool type, its fixed
train / held-out split, and scikit-learn's handwritten digits.
"""
from typing import NamedTuple, Sequence, Tuple

import numpy as np


def split_pool(labels: Sequence[int], held_out_fraction: float,
               seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Split item indices into disjoint train / held-out parts per class.

    Train mosaics must only use train items and val mosaics only held-out
    ones, otherwise validation would score memorised items. Stratifying
    keeps every class in both parts.

    Args:
        labels (Sequence[int]): Class of each item.
        held_out_fraction (float): Fraction of each class held out, in
            (0, 1). Every class keeps at least one item on each side.
        seed (int): Seed of the split; fix it so that the split does not
            change with the seed used to draw mosaics.

    Returns:
        tuple[np.ndarray, np.ndarray]: Sorted train and held-out indices.
    """
    if not 0 < held_out_fraction < 1:
        raise ValueError('held_out_fraction must be in (0, 1), got '
                         f'{held_out_fraction}')
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, held_out = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if len(idx) < 2:
            raise ValueError(f'class {cls} has {len(idx)} item(s); need at '
                             'least 2 to split it')
        n_out = min(max(int(round(len(idx) * held_out_fraction)), 1),
                    len(idx) - 1)
        held_out.append(idx[:n_out])
        train.append(idx[n_out:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held_out))


class ItemPool(NamedTuple):
    """Labelled items to draw mosaics from, split into train and held-out.

    Train mosaics are drawn from ``train_*`` only and val mosaics from
    ``held_out_*`` only, so no item is scored that training has seen.

    Attributes:
        name (str): Short description written into the COCO files.
        classes (tuple[str]): Class names; class index = position.
        category_ids (tuple[int]): COCO category id of each class, ascending
            so that sorting by id keeps the class order.
        supercategory (str): COCO supercategory of every class.
        train_images (np.ndarray): (N, h, w) or (N, h, w, 3) uint8 items.
        train_labels (np.ndarray): (N,) class indices.
        held_out_images (np.ndarray): Items of the val mosaics.
        held_out_labels (np.ndarray): Their class indices.
    """
    name: str
    classes: Tuple[str, ...]
    category_ids: Tuple[int, ...]
    supercategory: str
    train_images: np.ndarray
    train_labels: np.ndarray
    held_out_images: np.ndarray
    held_out_labels: np.ndarray


DIGIT_NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
               'eight', 'nine')
# Ascending, with gaps (like COCO's 1..90 for 80 classes): sorted by id the
# categories are still zero..nine, and the id -> index mapping is exercised.
DIGIT_CATEGORY_IDS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
# scikit-learn's digits have no official test split: this fraction of each
# digit's scans is held out, with a fixed seed, so that held-out mosaics
# never share a scan with train ones whatever seed draws the mosaics.
DIGIT_HELD_OUT_FRACTION = 1 / 3
DIGIT_SPLIT_SEED = 20230618


def load_digit_pool() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 images (1797 real 8x8 scans).

    Returns:
        tuple[np.ndarray, np.ndarray]: (1797, 8, 8) uint8 images (white
        digit on black, 0..255) and their (1797,) labels 0..9.
    """
    from sklearn.datasets import load_digits  # bundled: no download
    digits = load_digits()
    # The scans hold ink counts 0..16.
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def digit_split(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The fixed, stratified train / held-out split of the digit scans.

    Args:
        labels (np.ndarray): The labels returned by :func:`load_digit_pool`.

    Returns:
        tuple[np.ndarray, np.ndarray]: Sorted train and held-out indices.
    """
    return split_pool(labels, DIGIT_HELD_OUT_FRACTION, DIGIT_SPLIT_SEED)


def digits_item_pool() -> ItemPool:
    """scikit-learn's digits with the fixed split of :func:`digit_split`."""
    images, labels = load_digit_pool()
    train, held_out = digit_split(labels)
    return ItemPool('digit', DIGIT_NAMES, DIGIT_CATEGORY_IDS, 'digit',
                    images[train], labels[train], images[held_out],
                    labels[held_out])
