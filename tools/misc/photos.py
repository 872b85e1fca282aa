"""COCO-sized JPEGs of real photos, made offline.

scikit-learn bundles two 640 x 427 photographs (``load_sample_images``).
Random crops of them, rescaled to the sizes that are common in MS-COCO
2014 and saved as JPEG, decode at the cost of COCO images: real texture,
4:2:0 chroma, a long side of about 640 pixels.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

# Frequent MS-COCO 2014 image sizes (width, height), with rough weights.
COCO_SIZES: Tuple[Tuple[Tuple[int, int], float], ...] = (
    ((640, 480), 0.40), ((640, 427), 0.16), ((480, 640), 0.10),
    ((640, 426), 0.06), ((640, 428), 0.05), ((427, 640), 0.05),
    ((500, 375), 0.05), ((640, 360), 0.04), ((612, 612), 0.03),
    ((375, 500), 0.03), ((640, 512), 0.03))


def sample_photos() -> List[np.ndarray]:
    """scikit-learn's two sample photos, ``427 x 640 x 3`` uint8 RGB."""
    from sklearn.datasets import load_sample_images
    return [np.asarray(img) for img in load_sample_images().images]


def photo(width: int,
          height: int,
          rng: np.random.Generator,
          photos: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
    """A ``height x width`` RGB image: a random crop of a sample photo
    (at least half of it on each side) rescaled with Pillow's LANCZOS.

    Args:
        width (int): Output width.
        height (int): Output height.
        rng (np.random.Generator): Chooses the photo, crop and mirroring.
        photos (Sequence[np.ndarray], optional): Source photos; default
            :func:`sample_photos`.

    Returns:
        np.ndarray: ``height x width x 3`` uint8.
    """
    photos = photos if photos is not None else sample_photos()
    src = photos[rng.integers(len(photos))]
    h, w = src.shape[:2]
    # A crop with the output's aspect ratio, as large as fits, then shrunk
    # by up to half, at a random place.
    aspect = width / height
    cw = min(w, int(h * aspect))
    ch = min(h, int(cw / aspect))
    cw = int(cw * rng.uniform(0.5, 1.0))
    ch = max(1, int(cw / aspect))
    x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    crop = src[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(crop)).resize((width, height),
                                                           Image.LANCZOS))


def write_photo_jpegs(folder: str,
                      num: int,
                      sizes: Optional[Sequence[Tuple[int, int]]] = None,
                      seed: int = 0,
                      quality: int = 90) -> List[str]:
    """Write ``num`` COCO-sized JPEGs of the sample photos.

    Args:
        folder (str): Output folder (created).
        num (int): Number of files, ``photo_00000.jpg`` ...
        sizes (Sequence, optional): ``(width, height)`` to cycle through;
            default: drawn from :data:`COCO_SIZES` by weight.
        seed (int): Random seed.
        quality (int): JPEG quality (Pillow's, 4:2:0 chroma).

    Returns:
        list[str]: The paths written.
    """
    rng = np.random.default_rng(seed)
    photos = sample_photos()
    if sizes is None:
        weights = np.array([w for _, w in COCO_SIZES])
        picks = rng.choice(len(COCO_SIZES), num, p=weights / weights.sum())
        sizes = [COCO_SIZES[i][0] for i in picks]
    os.makedirs(folder, exist_ok=True)
    paths = []
    for n in range(num):
        width, height = sizes[n % len(sizes)]
        path = osp.join(folder, f'photo_{n:05d}.jpg')
        Image.fromarray(photo(width, height, rng, photos)).save(
            path, quality=quality)
        paths.append(path)
    return paths


def write_coco_photos(root: str,
                      num_images: int,
                      split: str = 'train2014',
                      seed: int = 0,
                      sizes: Optional[Sequence[Tuple[int, int]]] = None,
                      quality: int = 90) -> str:
    """An MS-COCO 2014 split of photo JPEGs (:func:`write_photo_jpegs`)
    with 1..4 random categories per image, readable by ``CocoMultiLabel``.

    Args:
        root (str): Dataset root; ``annotations/instances_<split>.json``
            and ``<split>/COCO_<split>_<id>.jpg`` are written.
        num_images (int): Number of images.
        split (str): ``'train2014'`` or ``'val2014'``.
        seed (int): Random seed.
        sizes (Sequence, optional): ``(width, height)`` to cycle through;
            default :data:`COCO_SIZES` by weight.
        quality (int): JPEG quality.

    Returns:
        str: The annotation file.
    """
    from tools.misc.synthetic import coco_file_name, write_coco_annotations
    rng = np.random.default_rng(seed + 1)
    folder = osp.join(root, split)
    paths = write_photo_jpegs(folder, num_images, sizes, seed, quality)
    images = []
    for n, path in enumerate(paths, 1):
        name = coco_file_name(split, n)
        os.replace(path, osp.join(folder, name))
        with Image.open(osp.join(folder, name)) as img:
            images.append((name, *img.size))
    return write_coco_annotations(root, split, images, rng)
