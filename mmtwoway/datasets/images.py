"""Image files of the datasets: existence, the missing-image policy, sizes.

The policy (``missing_images``) is described in docs/datasets.md.
"""
import os
import os.path as osp
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from .cache import CACHE_VERSION, read_json_cache, track, write_json_atomic
from .image_header import read_file_header
from .skipped import SkippedRecords, listing

MISSING_POLICIES = ('error', 'skip')

# Cache file of image sizes, one per cache folder.
_SIZES_FILE = 'image-sizes.json'


def check_missing_policy(name: str, policy: str) -> str:
    """Validate a ``missing_images`` argument (fail at construction)."""
    if policy not in MISSING_POLICIES:
        raise ValueError(f'{name}: missing_images must be one of '
                         f'{MISSING_POLICIES}, got {policy!r}')
    return policy


def find_missing(paths: Iterable[str]) -> set:
    """The distinct paths among ``paths`` that are not existing files."""
    return {path for path in set(paths) if not osp.isfile(path)}


def drop_missing_images(name: str,
                        data_list: List[dict],
                        policy: str,
                        describe: Callable[[dict], str],
                        hint: str,
                        skipped: SkippedRecords,
                        missing: Optional[set] = None) -> List[dict]:
    """Apply the missing-image policy to ``data_list``.

    Args:
        name (str): The dataset name, for messages.
        data_list (list[dict]): Samples with an ``img_path``.
        policy (str): ``'error'`` or ``'skip'``.
        describe (Callable): Names the file and record of a sample.
        hint (str): What the user should check (expected layout, the
            ``data_prefix`` they gave ...), appended to the error.
        skipped (SkippedRecords): Receives the skipped samples.
        missing (set, optional): The missing paths if already known;
            otherwise every ``img_path`` is checked.

    Returns:
        list[dict]: ``data_list`` without the samples of missing images
        (with ``'skip'``); unchanged if nothing is missing.

    Raises:
        FileNotFoundError: Some images are missing and the policy is
            ``'error'``.
    """
    if missing is None:
        missing = find_missing(info['img_path'] for info in data_list)
    if not missing:
        return data_list
    bad = [info for info in data_list if info['img_path'] in missing]
    if policy == 'error':
        raise FileNotFoundError(
            f'{name}: {len(missing)} image file(s) used by {len(bad)} of '
            f'{len(data_list)} samples not found: '
            f'{listing([describe(info) for info in bad])}. {hint} To '
            'train without them, pass missing_images="skip" (the samples '
            'are then counted and logged).')
    for info in bad:
        skipped.add('skipped, image not found', describe(info))
    return [info for info in data_list if info['img_path'] not in missing]


def read_image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as the loading pipeline decodes it.

    Only the header is read. An EXIF orientation that rotates by 90 degrees
    swaps the two, as OpenCV (mmcv's ``LoadImageFromFile``) rotates the
    pixels on decoding.

    Args:
        path (str): An image file.

    Returns:
        tuple[int, int]: Width and height in pixels.

    Raises:
        ValueError: The file is not an image Pillow can identify.
    """
    header = read_file_header(path)
    return header.width, header.height


def image_sizes(paths: Sequence[str], cache_dir: Optional[str],
                name: str) -> Dict[str, Optional[Tuple[int, int]]]:
    """The size of every image, read once and then cached.

    The instance datasets (VAW, WIDER Attribute) need sizes for their box
    rule. Sizes come from the file header, not the pixels, and the cache is
    keyed on each image's modification time and size.

    Args:
        paths (Sequence[str]): Image files (duplicates allowed).
        cache_dir (str, optional): Where ``image-sizes.json`` lives; None
            reads every header on every run.
        name (str): The dataset name, for log messages.

    Returns:
        dict: ``path -> (width, height)``, or ``None`` for a missing file.
    """
    cache_path = osp.join(cache_dir, _SIZES_FILE) if cache_dir else None
    cached = _read_sizes(cache_path)
    sizes: Dict[str, Optional[Tuple[int, int]]] = {}
    todo = []
    for path in dict.fromkeys(paths):  # unique, in order
        try:
            st = os.stat(path)
        except FileNotFoundError:
            sizes[path] = None
            continue
        stamp = [st.st_mtime_ns, st.st_size]
        entry = cached.get(osp.abspath(path))
        if entry is not None and entry[:2] == stamp:
            sizes[path] = (entry[2], entry[3])
        else:
            todo.append((path, stamp))
    if not todo:
        return sizes
    print_log(
        f'{name}: reading the size of {len(todo)} image(s) from their '
        'headers' +
        (f' (cached in "{cache_path}" for later runs)' if cache_path else ''),
        logger='current')
    new = {}
    for path, stamp in track(todo, len(todo)):
        sizes[path] = read_image_size(path)
        new[osp.abspath(path)] = stamp + list(sizes[path])
    if cache_path:
        # Re-read before writing: another dataset (or rank) may have added
        # entries since; keep theirs and ours.
        merged = _read_sizes(cache_path)
        merged.update(new)
        write_json_atomic(cache_path,
                          dict(version=CACHE_VERSION, sizes=merged))
    return sizes


def _read_sizes(cache_path: Optional[str]) -> dict:
    """``abs path -> [mtime_ns, size, width, height]`` from the cache."""
    if cache_path is None:
        return {}
    data = read_json_cache(cache_path)
    if not data or data.get('version') != CACHE_VERSION:
        return {}
    sizes = data.get('sizes')
    return sizes if isinstance(sizes, dict) else {}
