"""Tiny fixtures in the exact published formats of VOC, VISPR, VAW, WIDER.

Each ``write_*`` function writes, under a root folder, a few records in the
layout and format users download, with small real JPEG images, and returns
the *expected* samples, written out by hand from the records (never by
running mmtwoway code), so the tests compare the datasets against an
independent answer.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
from PIL import Image

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')


def write_jpeg(path, width: int, height: int, seed: int = 0) -> None:
    """A small real JPEG with random pixels (so crops can be compared)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)


def write_json(path, data) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)


# --------------------------------------------------------------------- VOC
# id -> list of (name, difficult flag or None for a missing <difficult>).
VOC07_OBJECTS = {
    '000005': [('chair', 0), ('chair', 1), ('diningtable', 1)],
    '000007': [('car', 0)],
    '000009': [('horse', 0), ('person', 0), ('person', 1)],
    '000012': [('bird', 1)],  # difficult only: no positive at all
    '000016': [('bicycle', None), ('dog', 0), ('bottle', 1)],
}
VOC07_SPLITS = {
    'trainval': ['000005', '000007', '000009', '000012'],
    'test': ['000016'],
}
VOC12_OBJECTS = {
    '2008_000008': [('horse', 0), ('person', 1)],
    '2008_000015': [('bottle', 0), ('bottle', 1)],
    '2008_000019': [('dog', 0)],
}
VOC12_SPLITS = {
    'train': ['2008_000008', '2008_000015'],
    'val': ['2008_000019']
}


def voc_expected(objects: Dict[str, list]) -> Dict[str, tuple]:
    """id -> (positives, difficult classes, difficult-only classes)."""
    idx = {name: i for i, name in enumerate(VOC_CLASSES)}
    expected = {}
    for img_id, objs in objects.items():
        pos = sorted({idx[n] for n, d in objs if not d})
        diff = sorted({idx[n] for n, d in objs if d})
        expected[img_id] = (pos, diff, sorted(set(diff) - set(pos)))
    return expected


def voc_xml(img_id: str, folder: str, objects: list, size=(32, 24)) -> str:
    """An annotation file as in VOCdevkit (2007 flavour of the fields)."""
    objs = []
    for name, difficult in objects:
        flag = '' if difficult is None else \
            f'\n\t\t<difficult>{difficult}</difficult>'
        objs.append(f"""
\t<object>
\t\t<name>{name}</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>{flag}
\t\t<bndbox>
\t\t\t<xmin>2</xmin>
\t\t\t<ymin>3</ymin>
\t\t\t<xmax>20</xmax>
\t\t\t<ymax>18</ymax>
\t\t</bndbox>
\t</object>""")
    return f"""<annotation>
\t<folder>{folder}</folder>
\t<filename>{img_id}.jpg</filename>
\t<source>
\t\t<database>The {folder} Database</database>
\t\t<annotation>PASCAL {folder}</annotation>
\t\t<image>flickr</image>
\t</source>
\t<size>
\t\t<width>{size[0]}</width>
\t\t<height>{size[1]}</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>{''.join(objs)}
</annotation>
"""


def write_voc(root, year: int = 2007, skip_images: Sequence[str] = ()):
    """``<root>/VOCdevkit/VOC<year>``; returns that folder."""
    objects, splits = ((VOC07_OBJECTS, VOC07_SPLITS) if year == 2007 else
                       (VOC12_OBJECTS, VOC12_SPLITS))
    base = osp.join(str(root), 'VOCdevkit', f'VOC{year}')
    os.makedirs(osp.join(base, 'Annotations'), exist_ok=True)
    os.makedirs(osp.join(base, 'ImageSets', 'Main'), exist_ok=True)
    for k, (img_id, objs) in enumerate(objects.items()):
        with open(osp.join(base, 'Annotations', f'{img_id}.xml'), 'w') as f:
            f.write(voc_xml(img_id, f'VOC{year}', objs))
        if img_id not in skip_images:
            write_jpeg(
                osp.join(base, 'JPEGImages', f'{img_id}.jpg'), 32, 24, k)
    for split, ids in splits.items():
        with open(osp.join(base, 'ImageSets', 'Main', f'{split}.txt'),
                  'w') as f:
            f.write(''.join(f'{i}\n' for i in ids))
    return base


# ------------------------------------------------------------------- VISPR
# (idx, attribute_id, group, description); ids are non-contiguous and out of
# numeric order, one row has no idx (left out, as the authors' loader does).
VISPR_ATTRIBUTES = [
    ('0', 'a0_safe', 'Safe', 'Safe'),
    ('1', 'a1_age_approx', 'Personal Description', 'Approximate age'),
    ('2', 'a4_gender', 'Personal Description', 'Gender'),
    ('', 'a200_draft', 'Other', 'Not part of the release'),
    ('3', 'a99_legal_involvement', 'Personal Life', 'Legal involvement'),
    ('4', 'a9_face_complete', 'Personal Description', 'Full face visible'),
    ('5', 'a104_license_plate_partial', 'Automobile', 'Partial plate'),
]
VISPR_CLASSES = ('a0_safe', 'a1_age_approx', 'a4_gender',
                 'a99_legal_involvement', 'a9_face_complete',
                 'a104_license_plate_partial')
# split -> list of (image id, labels); expected classes below.
VISPR_IMAGES = {
    'train2017':
    [('2017_10001018', ['a4_gender', 'a9_face_complete', 'a1_age_approx']),
     ('2017_10002345', ['a0_safe'])],
    'val2017':
    [('2017_20000017',
      ['a104_license_plate_partial', 'a99_legal_involvement', 'a4_gender'])],
    'test2017': [('2017_30000001', ['a9_face_complete']),
                 ('2017_30000002', ['a0_safe'])],
}
VISPR_EXPECTED = {
    '2017_10001018': [1, 2, 4],
    '2017_10002345': [0],
    '2017_20000017': [2, 3, 5],
    '2017_30000001': [4],
    '2017_30000002': [0],
}


def write_vispr(root, skip_images: Sequence[str] = ()):
    """The VISPR2017 release layout under ``root``; returns ``root``."""
    root = str(root)
    with open(osp.join(root, 'attributes.tsv'), 'w') as f:
        f.write('idx\tattribute_id\tgroup\tdescription\n')
        f.writelines('\t'.join(row) + '\n' for row in VISPR_ATTRIBUTES)
    for k, (split, images) in enumerate(VISPR_IMAGES.items()):
        lines = []
        for j, (img_id, labels) in enumerate(images):
            rel = f'annotations/{split}/{img_id}.json'
            lines.append(rel + '\n')
            write_json(
                osp.join(root, rel),
                dict(
                    id=img_id,
                    image_path=f'images/{split}/{img_id}.jpg',
                    labels=labels))
            if img_id not in skip_images:
                write_jpeg(
                    osp.join(root, 'images', split, f'{img_id}.jpg'), 20, 16,
                    10 * k + j)
        with open(osp.join(root, f'{split}.txt'), 'w') as f:
            f.writelines(lines)
    return root


# --------------------------------------------------------------------- VAW
VAW_ATTRIBUTES = {
    'white': 0,
    'light colored': 1,
    'wooden': 2,
    'red': 3,
    'tiled': 4,
    'gray': 5
}
VAW_IMAGE_SIZES = {  # image id -> (width, height, folder)
    '2373241': (40, 30, 'VG_100K'),
    '2415095': (36, 28, 'VG_100K_2'),
    '107899': (30, 40, 'VG_100K'),
    '2350190': (32, 32, 'VG_100K_2'),
}


def vaw_instance(image_id, instance_id, bbox, pos, neg, polygon=True):
    return dict(
        image_id=image_id,
        instance_id=instance_id,
        instance_bbox=bbox,
        instance_polygon=[[[bbox[0], bbox[1]], [bbox[0] + 1, bbox[1]],
                           [bbox[0], bbox[1] + 1]]] if polygon else None,
        object_name='floor',
        positive_attributes=pos,
        negative_attributes=neg)


# file -> instances. Ids as ints (README) and strings (loaders).
VAW_FILES = {
    'train_part1.json': [
        vaw_instance(2373241, 2373241004, [2.5, 3.0, 20.0, 10.5],
                     ['tiled', 'gray', 'light colored'], ['red']),
        # Partly outside the image (x < 0, y + h > height): clipped.
        vaw_instance(
            2373241,
            2373241005, [-4.0, 20.0, 14.0, 15.0], ['wooden'],
            ['white', 'tiled'],
            polygon=False),
    ],
    'train_part2.json': [
        vaw_instance('2415095', '2415095001', [10.0, 5.0, 8.25, 12.0],
                     ['white'], []),
        # Wholly outside its 36x28 image: skipped by the box rule.
        vaw_instance('2415095', '2415095002', [40.0, 2.0, 5.0, 5.0], ['red'],
                     ['white']),
    ],
    'val.json': [
        # 'red' both positive and negative: made ignored.
        vaw_instance(107899, '107899010', [0.0, 0.0, 30.0, 40.0],
                     ['red', 'gray'], ['red', 'white', 'wooden']),
        # Degenerate (zero width): skipped by the box rule.
        vaw_instance(107899, 107899011, [5.0, 5.0, 0.0, 9.0], ['gray'], []),
    ],
    'test.json': [
        vaw_instance('2350190', '2350190001', [4.0, 4.0, 16.0, 16.0], ['red'],
                     ['gray', 'white']),
        vaw_instance(2350190, 2350190002, [20.5, 25.5, 30.0, 30.0], [],
                     ['tiled']),
    ],
}
VAW_TRAIN_FILES = ('train_part1.json', 'train_part2.json', 'val.json')
# instance id -> (image id, box xyxy, positives, negatives) of the kept ones;
# every class in neither list is ignored (-1).
VAW_EXPECTED = {
    '2373241004': ('2373241', [2.5, 3.0, 22.5, 13.5], [1, 4, 5], [3]),
    '2373241005': ('2373241', [-4.0, 20.0, 10.0, 35.0], [2], [0, 4]),
    '2415095001': ('2415095', [10.0, 5.0, 18.25, 17.0], [0], []),
    '107899010': ('107899', [0.0, 0.0, 30.0, 40.0], [5], [0, 2]),
    '2350190001': ('2350190', [4.0, 4.0, 20.0, 20.0], [3], [0, 5]),
    '2350190002': ('2350190', [20.5, 25.5, 50.5, 55.5], [], [4]),
}
VAW_SKIPPED_BOXES = ['2415095002', '107899011']


def write_vaw(root, skip_images: Sequence[str] = (), files=None):
    """A VAW checkout (``data/``) plus VG image folders under ``root``."""
    root = str(root)
    write_json(osp.join(root, 'data', 'attribute_index.json'), VAW_ATTRIBUTES)
    for name, instances in (files or VAW_FILES).items():
        write_json(osp.join(root, 'data', name), instances)
    for k, (img_id, (w, h, folder)) in enumerate(VAW_IMAGE_SIZES.items()):
        if img_id not in skip_images:
            write_jpeg(osp.join(root, folder, f'{img_id}.jpg'), w, h, k)
    return root


# ------------------------------------------------------------------- WIDER
WIDER_CLASSES = ('Male', 'longHair', 'sunglass', 'Hat', 'Tshiirt',
                 'longSleeve', 'formal', 'shorts', 'jeans', 'longPants',
                 'skirt', 'faceMask', 'logo', 'stripe')
WIDER_IMAGE_SIZES = {
    'train/0--Parade/0_Parade_marchingband_1_849.jpg': (48, 36),
    'train/2--Demonstration/2_Demonstration_Protesters_2_77.jpg': (40, 40),
    'val/0--Parade/0_Parade_Parade_0_102.jpg': (44, 30),
    'test/1--Handshaking/1_Handshaking_Handshaking_1_94.jpg': (50, 32),
}


def _attrs(pos: List[int], neg: List[int]) -> List[int]:
    values = [0] * len(WIDER_CLASSES)
    for i in pos:
        values[i] = 1
    for i in neg:
        values[i] = -1
    return values


# file_name -> list of (bbox xywh, positives, negatives, kept?)
WIDER_TARGETS = {
    'train/0--Parade/0_Parade_marchingband_1_849.jpg': [
        ([3, 4, 12, 25], [0, 5, 9], [1, 2, 3, 7, 10, 11], True),
        # Starts outside the image (x < 0): kept, clipped when cropped.
        ([-6, 2, 15, 30], [1, 10], [0, 2], True),
        # Degenerate (zero height): dropped.
        ([20, 10, 8, 0], [0], [], False),
    ],
    'train/2--Demonstration/2_Demonstration_Protesters_2_77.jpg': [
        # Wholly below the 40x40 image: dropped.
        ([5, 41, 10, 10], [], [0], False),
        ([10, 10, 20, 25], [12, 13], [4, 6, 8], True),
    ],
    'val/0--Parade/0_Parade_Parade_0_102.jpg': [
        ([30, 5, 20, 20], [3], [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                13], True),
    ],
    'test/1--Handshaking/1_Handshaking_Handshaking_1_94.jpg': [
        ([1, 1, 10, 20], [0, 6], [10], True),
        ([30, 2, 18, 28], [], [], True),  # every attribute unspecified
    ],
}


def wider_json(names: Sequence[str]) -> dict:
    images = []
    for k, name in enumerate(names):
        scene = int(name.split('/')[1].split('--')[0])
        images.append(
            dict(
                file_name=name,
                scene_id=scene,
                targets=[
                    dict(attribute=_attrs(pos, neg), bbox=bbox)
                    for bbox, pos, neg, _ in WIDER_TARGETS[name]
                ]))
    return dict(
        images=images,
        attribute_id_map={
            str(i): n
            for i, n in enumerate(WIDER_CLASSES)
        },
        scene_id_map={
            '0': 'Parade',
            '1': 'Handshaking',
            '2': 'Demonstration'
        })


def wider_expected(prefixes: Sequence[str]) -> List[tuple]:
    """(file_name, box index, xyxy, positives, negatives) of kept boxes."""
    expected = []
    for name, targets in WIDER_TARGETS.items():
        if name.split('/')[0] not in prefixes:
            continue
        for k, ((x, y, w, h), pos, neg, kept) in enumerate(targets):
            if kept:
                expected.append((name, k, [x, y, x + w, y + h], pos, neg))
    return expected


def write_wider(root, skip_images: Sequence[str] = ()):
    """The unzipped WIDER Attribute release under ``root``."""
    root = str(root)
    trainval = [n for n in WIDER_TARGETS if not n.startswith('test/')]
    test = [n for n in WIDER_TARGETS if n.startswith('test/')]
    write_json(
        osp.join(root, 'wider_attribute_trainval.json'), wider_json(trainval))
    write_json(osp.join(root, 'wider_attribute_test.json'), wider_json(test))
    for k, (name, (w, h)) in enumerate(WIDER_IMAGE_SIZES.items()):
        if name not in skip_images:
            write_jpeg(osp.join(root, 'Image', name), w, h, k)
    return root
