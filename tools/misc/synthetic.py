"""Synthetic image datasets in the published layouts, for benchmarks.

The images are smooth random fields (upsampled noise) saved as JPEG, so the
files have natural-image sizes and decoding costs what it costs on photos.
"""
import os
import os.path as osp
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

from tools.misc.coco_writer import CocoWriter

# COCO 2014's category ids: 1..90 without these ten.
UNUSED_COCO_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
COCO_IDS = tuple(i for i in range(1, 91) if i not in UNUSED_COCO_IDS)
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')


def smooth_jpeg(path: str, width: int, height: int,
                rng: np.random.Generator, quality: int = 90) -> None:
    """Write a JPEG of smooth random colours (a natural-looking size).

    Args:
        path (str): Output file (its folder must exist).
        width (int): Image width.
        height (int): Image height.
        rng (np.random.Generator): Source of the pixels.
        quality (int): JPEG quality.
    """
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3),
                          dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    img.save(path, quality=quality)


def write_coco_jpegs(root: str,
                     num_images: int,
                     width: int,
                     height: int,
                     split: str = 'train2014',
                     seed: int = 0) -> str:
    """A synthetic MS-COCO 2014 split: JPEGs and an instances json.

    Each image gets 1..4 random COCO categories.

    Args:
        root (str): Dataset root; ``annotations/instances_<split>.json``
            and ``<split>/COCO_<split>_<id>.jpg`` are written there.
        num_images (int): Number of images.
        width (int): Image width.
        height (int): Image height.
        split (str): ``'train2014'`` or ``'val2014'``.
        seed (int): Random seed.

    Returns:
        str: The path of the annotation file.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, split), exist_ok=True)
    images = []
    for n in range(1, num_images + 1):
        name = coco_file_name(split, n)
        smooth_jpeg(osp.join(root, split, name), width, height, rng)
        images.append((name, width, height))
    return write_coco_annotations(root, split, images, rng)


def coco_file_name(split: str, image_id: int) -> str:
    """COCO 2014's file name of an image id, e.g. COCO_val2014_...42.jpg."""
    return f'COCO_{split}_{image_id:012d}.jpg'


def write_coco_annotations(root: str, split: str,
                           images: Sequence[Tuple[str, int, int]],
                           rng: np.random.Generator) -> str:
    """``annotations/instances_<split>.json`` with random categories.

    Args:
        root (str): Dataset root.
        split (str): ``'train2014'`` or ``'val2014'``.
        images (Sequence[Tuple[str, int, int]]): (file name, width,
            height) of each image, in id order (ids 1, 2, ...).
        rng (np.random.Generator): Draws 1..4 COCO categories per image.

    Returns:
        str: The path of the annotation file.
    """
    writer = CocoWriter([dict(id=i, name=f'category {i}') for i in COCO_IDS])
    for name, width, height in images:
        image_id = writer.add_image(name, width, height)
        for cid in rng.choice(COCO_IDS, rng.integers(1, 5), replace=False):
            writer.add_annotation(image_id, int(cid),
                                  [0, 0, width // 2, height // 2])
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    writer.dump(ann_file)
    return ann_file


def _voc_object(name: str, difficult: bool, size: Tuple[int, int]) -> str:
    w, h = size
    return (f'<object><name>{name}</name><pose>Unspecified</pose>'
            f'<truncated>0</truncated><difficult>{int(difficult)}'
            f'</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>{w // 2}'
            f'</xmax><ymax>{h // 2}</ymax></bndbox></object>')


def write_voc_jpegs(root: str,
                    num_images: int,
                    width: int,
                    height: int,
                    split: str = 'test',
                    seed: int = 0) -> Sequence[Tuple[str, ...]]:
    """A synthetic PASCAL VOC 2007 split with difficult objects.

    Every image has 1..3 objects; about a third of them are difficult, so
    some classes appear only on difficult objects (the case VOC's metric
    ignores).

    Args:
        root (str): The ``VOC2007`` folder (``Annotations``,
            ``JPEGImages``, ``ImageSets/Main/<split>.txt`` are written).
        num_images (int): Number of images.
        width (int): Image width.
        height (int): Image height.
        split (str): The split list to write.
        seed (int): Random seed.

    Returns:
        list: Per image, the names of its classes seen only as difficult.
    """
    rng = np.random.default_rng(seed)
    for folder in ('Annotations', 'JPEGImages', osp.join('ImageSets',
                                                         'Main')):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    ids, difficult_only = [], []
    for n in range(num_images):
        img_id = f'{n:06d}'
        smooth_jpeg(osp.join(root, 'JPEGImages', f'{img_id}.jpg'), width,
                    height, rng)
        names = rng.choice(VOC_CLASSES, rng.integers(1, 4), replace=False)
        flags = rng.random(len(names)) < 1 / 3
        objects = ''.join(
            _voc_object(str(c), bool(d), (width, height))
            for c, d in zip(names, flags))
        with open(osp.join(root, 'Annotations', f'{img_id}.xml'), 'w') as f:
            f.write(f'<annotation><folder>VOC2007</folder><filename>{img_id}'
                    f'.jpg</filename><size><width>{width}</width><height>'
                    f'{height}</height><depth>3</depth></size>{objects}'
                    '</annotation>\n')
        ids.append(img_id)
        difficult_only.append(tuple(str(c) for c, d in zip(names, flags)
                                    if d))
    with open(osp.join(root, 'ImageSets', 'Main', f'{split}.txt'), 'w') as f:
        f.write(''.join(f'{i}\n' for i in ids))
    return difficult_only
