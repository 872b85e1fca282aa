"""Write a synthetic Open Images tree in the published file layout.

    python tools/misc/make_openimages_data.py OUT [--split train]
        [--images 1000] [--classes 9605] [--labels-per-image 6.4]
        [--files none|link|jpeg] [--traps] [--machine] [--seed 0]

Files (names as published for V6, see docs/openimages.md)::

    OUT/oidv6-class-descriptions.csv          LabelName,DisplayName
    OUT/oidv6-classes-trainable.txt           one MID per line
    OUT/<labels of the split>.csv             ImageID,Source,LabelName,...
    OUT/<image IDs of the split>.csv          ImageID,...,Rotation
    OUT/<split>/<ImageID>.jpg                 with --files link / jpeg

``--files jpeg`` writes a 32x16 JPEG per image whose left half is white,
so a test can see the direction of a rotation; ``link`` hard-links one
such file (cheap at 10^5-10^6 images). ``--traps`` adds what a reader must
handle: described classes outside the trainable list, repeated rows,
verified 1 and 0 rows for one image and class, rotated images, a listed
image without labels and labels of an unlisted image; ``expected.json``
then gives every labelled image's expected labels, ``{ImageID: {MID:
value}}`` (value -1 for a conflict). The same arguments give the same files.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

LABEL_FILES = {
    'train': 'oidv6-train-annotations-human-imagelabels.csv',
    'validation': 'validation-annotations-human-imagelabels.csv',
    'test': 'test-annotations-human-imagelabels.csv',
}
MACHINE_FILES = {
    split: f'{split}-annotations-machine-imagelabels.csv'
    for split in LABEL_FILES
}
IMAGE_FILES = {
    'train': 'oidv6-train-images-with-labels-with-rotation.csv',
    'validation': 'validation-images-with-rotation.csv',
    'test': 'test-images-with-rotation.csv',
}
CLASS_FILE = 'oidv6-class-descriptions.csv'
TRAINABLE_FILE = 'oidv6-classes-trainable.txt'
IMAGE_HEADER = ('ImageID,Subset,OriginalURL,OriginalLandingURL,License,'
                'AuthorProfileURL,Author,Title,OriginalSize,OriginalMD5,'
                'Thumbnail300KURL,Rotation')
# Hard links per written JPEG with --files link.
_LINKS = 50_000
# Rows written per write() call when the files are large.
_BLOCK = 200_000


def mid(i: int) -> str:
    """The synthetic MID of class ``i``."""
    return f'/m/0c{i:05d}'


def write_jpeg(path: str) -> None:
    """A 32x16 JPEG, left half white, right half black."""
    from PIL import Image
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:, :16] = 255
    Image.fromarray(pixels).save(path, quality=95)


def make(out: str,
         split: str = 'train',
         images: int = 1000,
         classes: int = 9605,
         labels_per_image: float = 6.4,
         positive_fraction: float = 0.35,
         files: str = 'none',
         traps: bool = False,
         machine: bool = False,
         seed: int = 0) -> Dict[str, str]:
    """Write the tree; return ``{'labels': path, 'images': path, ...}``.

    Args:
        out (str): Output folder.
        split (str): ``train``, ``validation`` or ``test`` (file names).
        images (int): Number of labelled images.
        classes (int): Number of trainable classes (10% more are
            described but not trainable).
        labels_per_image (float): Mean verified labels per image (Poisson,
            at least 1).
        positive_fraction (float): Share of Confidence 1 labels.
        files (str): ``none``, ``link`` or ``jpeg`` image files.
        traps (bool): Add the traps listed in the module docstring.
        machine (bool): Also write a machine-generated label file.
        seed (int): Random seed.

    Returns:
        dict: The paths written.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    described = classes + max(1, classes // 10)
    with open(osp.join(out, CLASS_FILE), 'w') as f:
        f.write('LabelName,DisplayName\n')
        f.writelines(f'{mid(i)},class {i}\n' for i in range(described))
    # Trainable: a shuffled subset, so class index != description order.
    trainable = rng.permutation(described)[:classes]
    with open(osp.join(out, TRAINABLE_FILE), 'w') as f:
        f.writelines(f'{mid(i)}\n' for i in trainable)

    ids = rng.choice(2**62, size=images + 2, replace=False).astype(np.uint64)
    ids = np.unique(ids)[:images + 2]
    hex_ids = [f'{int(i):016x}' for i in ids]
    listed, unlisted = hex_ids[:images + 1], hex_ids[images + 1]
    labelled = hex_ids[:images]  # hex_ids[images]: listed, no label
    counts = np.maximum(rng.poisson(labels_per_image, images), 1)
    counts = np.minimum(counts, classes)
    rotation = rng.choice([0, 90, 180, 270], p=[.97, .01, .01, .01],
                          size=images + 1)
    expected: Dict[str, Dict[str, int]] = {}

    label_path = osp.join(out, LABEL_FILES[split])
    with open(label_path, 'w') as f:
        f.write('ImageID,Source,LabelName,Confidence\n')
        lines: List[str] = []
        for k, image in enumerate(labelled):
            cls = trainable[rng.choice(classes, counts[k], replace=False)]
            val = (rng.random(counts[k]) < positive_fraction).astype(int)
            rows = [(mid(int(c)), int(v)) for c, v in zip(cls, val)]
            if traps:
                expected[image] = {m: v for m, v in rows}
                rows += _trap_rows(k, rows, rng, described, trainable,
                                   expected[image])
            lines.extend(f'{image},verification,{m},{v}\n' for m, v in rows)
            if len(lines) >= _BLOCK:
                f.writelines(lines)
                lines = []
        if traps:  # labels of an image missing from the image list
            lines.append(f'{unlisted},verification,{mid(trainable[0])},1\n')
        f.writelines(lines)

    image_path = osp.join(out, IMAGE_FILES[split])
    with open(image_path, 'w') as f:
        f.write(IMAGE_HEADER + '\n')
        if traps:
            rotation[:4] = [90, 180, 270, 0]
        f.writelines(f'{image},{split},,,,,,,0,,,{float(r)}\n'
                     for image, r in zip(listed, rotation))
    paths = dict(labels=label_path, images=image_path,
                 classes=osp.join(out, CLASS_FILE),
                 trainable=osp.join(out, TRAINABLE_FILE))
    if machine:
        paths['machine'] = _write_machine(out, split, labelled, trainable,
                                          rng)
    if traps:
        with open(osp.join(out, 'expected.json'), 'w') as f:
            json.dump(dict(labels=expected,
                           rotation={i: int(r) for i, r in
                                     zip(listed, rotation)}), f)
    if files != 'none':
        _write_images(osp.join(out, split), listed, files)
    return paths


def _trap_rows(k: int, rows: list, rng, described: int,
               trainable: np.ndarray, expected: Dict[str, int]) -> list:
    """Extra rows of image ``k``: repeats, conflicts, untrainable classes."""
    extra = []
    m, v = rows[0]
    if k % 3 == 0:  # a repeated row: merged
        extra.append((m, v))
    if k % 4 == 1:  # the opposite verdict: the label becomes ignored
        extra.append((m, 1 - v))
        expected[m] = -1
    if k % 5 == 2:  # a described class outside the trainable list
        others = np.setdiff1d(np.arange(described), trainable)
        extra.append((mid(int(rng.choice(others))), 1))
    return extra


def _write_machine(out: str, split: str, images: List[str],
                   trainable: np.ndarray, rng) -> str:
    """Machine-generated labels: two per image, confidences in [0, 1]."""
    path = osp.join(out, MACHINE_FILES[split])
    with open(path, 'w') as f:
        f.write('ImageID,Source,LabelName,Confidence\n')
        for image in images:
            for c in rng.choice(trainable, 2, replace=False):
                f.write(f'{image},machine,{mid(int(c))},'
                        f'{rng.random():.2f}\n')
    return path


def _write_images(folder: str, names: List[str], files: str) -> None:
    """``<ImageID>.jpg`` for every name: real files or hard links."""
    os.makedirs(folder, exist_ok=True)
    first: Optional[str] = None
    for k, name in enumerate(names):
        path = osp.join(folder, f'{name}.jpg')
        if osp.exists(path):
            continue
        # A new file every _LINKS names: file systems cap the links per
        # file (65,000 on ext4).
        if files == 'jpeg' or first is None or k % _LINKS == 0:
            write_jpeg(path)
            first = path
        else:
            os.link(first, path)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='output folder')
    parser.add_argument('--split', default='train', choices=list(LABEL_FILES))
    parser.add_argument('--images', type=int, default=1000)
    parser.add_argument('--classes', type=int, default=9605)
    parser.add_argument('--labels-per-image', type=float, default=6.4)
    parser.add_argument('--positive-fraction', type=float, default=0.35)
    parser.add_argument('--files', default='none',
                        choices=['none', 'link', 'jpeg'])
    parser.add_argument('--traps', action='store_true')
    parser.add_argument('--machine', action='store_true')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.images < 1 or args.classes < 2:
        parser.error('--images must be >= 1 and --classes >= 2')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    paths = make(args.out, args.split, args.images, args.classes,
                 args.labels_per_image, args.positive_fraction, args.files,
                 args.traps, args.machine, args.seed)
    print(json.dumps(paths, indent=1))


if __name__ == '__main__':
    main()
