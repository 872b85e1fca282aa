"""Decoding fused with the crop: the geometry of the paper's augmentation at
a fraction of its CPU cost.

The paper's training pipeline (the authors' torchvision code) decodes the
whole JPEG, cuts a ``RandomResizedCrop``, resizes it to 224 x 224 with
antialiased bilinear interpolation, flips it, and then applies colour
jitter, PCA lighting and normalisation to float images on the CPU. Here
the CPU does only the geometry, on uint8 pixels:

1. the crop is drawn from the image header's size, exactly as torchvision
   draws it (:func:`random_resized_crop_box`), before any pixel is decoded;
2. a JPEG whose crop is at least twice (4x, 8x) the output size on both
   sides is decoded at half (quarter, eighth) size by libjpeg's scaled
   IDCT, which is faster and still leaves the crop at least as many pixels
   as it is resized to; the crop's edges are then rounded to that image's
   pixels (:func:`reduced_box`). Otherwise it is decoded at full size;
3. the crop is resized by PyTorch's antialiased bilinear uint8 kernel,
   the filter of Pillow's ``BILINEAR`` that torchvision uses on PIL images
   (two to four times faster than Pillow's here), then optionally
   flipped;
4. the photometric part runs on the whole batch on the device:
   :class:`~mmtwoway.models.ColorAugmentDataPreprocessor`.

With ``decode_on_device=True`` the transforms skip step 2 and 3: they
pass the file's bytes and a *decode plan* (crop box, output size, EXIF
orientation, flip) to :class:`~mmtwoway.models.DeviceJpegDataPreprocessor`,
which decodes the batch with ``torchvision.io.decode_jpeg`` on the GPU.

Images are oriented by their EXIF tag as OpenCV (mmcv's
``LoadImageFromFile``) orients them, so that boxes and sizes agree with
:func:`mmtwoway.datasets.images.read_image_size`.
"""
import io
import math
import os
import struct
import warnings
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS
from PIL import Image, UnidentifiedImageError

from .crop_instance import crop_region

# (x0, y0, x1, y1): a box, x1 and y1 exclusive.
Box = Tuple[float, float, float, float]

EXIF_ORIENTATION = 0x0112
# Orientations that swap width and height (EXIF 5-8 turn by 90 degrees).
TRANSPOSING = (5, 6, 7, 8)
# Per EXIF orientation: is the displayed x (y) axis the stored axis read
# backwards? Needed to place a box on an image decoded at reduced size.
_X_REVERSED = (2, 3, 6, 7)
_Y_REVERSED = (3, 4, 7, 8)
_CV2_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8
}
# JPEG colour modes that libjpeg / nvJPEG turn into RGB themselves.
_PLAIN_JPEG_MODES = ('RGB', 'L')


class ImageHeader:
    """What the header of an image file says, read without decoding.

    Attributes:
        width (int): Width as displayed (after the EXIF orientation).
        height (int): Height as displayed.
        raw_width (int): Width as stored in the file.
        raw_height (int): Height as stored.
        orientation (int): EXIF orientation, 1..8 (1 = as stored).
        format (str): Pillow's format name, e.g. ``'JPEG'``, ``'PNG'``.
        mode (str): Pillow's mode, e.g. ``'RGB'``, ``'L'``, ``'CMYK'``.
    """

    __slots__ = ('width', 'height', 'raw_width', 'raw_height',
                 'orientation', 'format', 'mode')

    def __init__(self, raw_width: int, raw_height: int, orientation: int,
                 format: str, mode: str) -> None:
        self.raw_width, self.raw_height = raw_width, raw_height
        self.orientation = orientation if orientation in range(1, 9) else 1
        swap = self.orientation in TRANSPOSING
        self.width, self.height = ((raw_height, raw_width) if swap else
                                   (raw_width, raw_height))
        self.format, self.mode = format, mode

    @property
    def plain_jpeg(self) -> bool:
        """A JPEG in RGB / grey (not CMYK): libjpeg's and nvJPEG's case."""
        return (self.format in ('JPEG', 'MPO')
                and self.mode in _PLAIN_JPEG_MODES)


# JPEG start-of-frame markers (baseline, extended, progressive, lossless,
# arithmetic): their segment holds the size and the component count.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_MODES = {1: 'L', 3: 'RGB', 4: 'CMYK'}


def _exif_orientation(data: bytearray, start: int, end: int) -> int:
    """The orientation tag of an EXIF (TIFF) block, 1 if absent."""
    tiff = data[start:end]
    if len(tiff) < 8 or tiff[:2] not in (b'II', b'MM'):
        return 1
    order = '<' if tiff[:2] == b'II' else '>'
    ifd = struct.unpack_from(order + 'I', tiff, 4)[0]
    if ifd + 2 > len(tiff):
        return 1
    count = struct.unpack_from(order + 'H', tiff, ifd)[0]
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            break
        tag, kind = struct.unpack_from(order + 'HH', tiff, entry)
        if tag == EXIF_ORIENTATION and kind == 3:  # SHORT
            return struct.unpack_from(order + 'H', tiff, entry + 8)[0]
    return 1


def jpeg_header(data: bytearray) -> Optional[ImageHeader]:
    """Read a JPEG's size, components and EXIF orientation from its markers.

    Pillow's parser reads every table of the header in Python; this one
    skips to the start-of-frame segment (about 10x faster). Returns None
    for anything it does not follow (not a JPEG, a damaged header), which
    :func:`read_header` then hands to Pillow.
    """
    if data[:2] != b'\xff\xd8':
        return None
    i, n, orientation = 2, len(data), 1
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if marker == 0xE1 and data[i + 4:i + 10] == b'Exif\x00\x00':
            orientation = _exif_orientation(data, i + 10, i + 2 + length)
        elif marker in _SOF_MARKERS:
            if i + 10 > n:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            mode = _JPEG_MODES.get(data[i + 9])
            if not (width and height and mode):
                return None
            return ImageHeader(width, height, orientation, 'JPEG', mode)
        elif marker in (0xD9, 0xDA):  # end of image / scan before a frame
            return None
        i += 2 + length
    return None


def read_header(data: bytes, path: str) -> ImageHeader:
    """Parse the header of an encoded image (JPEG markers directly, other
    formats with Pillow).

    Args:
        data (bytes): The file's content.
        path (str): The file, for error messages.

    Returns:
        ImageHeader: Its sizes, orientation, format and mode.

    Raises:
        ValueError: The data is not an image Pillow can identify.
    """
    header = jpeg_header(data)
    if header is not None:
        return header
    try:
        with Image.open(io.BytesIO(data)) as img:
            orientation = 1
            if img.format in ('JPEG', 'PNG', 'WEBP', 'TIFF', 'MPO'):
                orientation = img.getexif().get(EXIF_ORIENTATION, 1)
            return ImageHeader(img.size[0], img.size[1], orientation,
                               img.format, img.mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f'"{path}" is not a readable image ({err}). '
                         'Re-download or re-extract it.') from err


def read_file(path: str) -> bytearray:
    """The bytes of an image file (writable, so that torch can wrap them
    without a copy); a missing file names itself."""
    try:
        with open(path, 'rb', buffering=0) as f:
            data = bytearray(os.fstat(f.fileno()).st_size)
            f.readinto(data)
            return data
    except FileNotFoundError:
        raise FileNotFoundError(
            f'image file "{path}" not found; check the data_root and '
            'data_prefix of the dataset') from None


def random_resized_crop_box(width: int,
                            height: int,
                            scale: Tuple[float, float] = (0.08, 1.0),
                            ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                            max_attempts: int = 10) -> Tuple[int, int, int,
                                                              int]:
    """A ``RandomResizedCrop`` box, drawn as torchvision draws it.

    Up to ``max_attempts`` times: an area fraction uniform in ``scale`` and
    an aspect ratio log-uniform in ``ratio``, rounded to whole pixels; the
    first that fits is placed uniformly. If none fits, the centre crop of
    the largest box with an aspect ratio in ``ratio``. The randomness is
    numpy's global generator (seeded per dataloader worker by mmengine).

    Args:
        width (int): Image width.
        height (int): Image height.
        scale (tuple): Range of the crop's area fraction.
        ratio (tuple): Range of the crop's aspect ratio (width / height).
        max_attempts (int): Draws before the centre fallback.

    Returns:
        tuple: ``(x0, y0, x1, y1)`` in whole pixels.
    """
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(max_attempts):
        target_area = area * np.random.uniform(scale[0], scale[1])
        aspect = math.exp(np.random.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            y = np.random.randint(0, height - h + 1)
            x = np.random.randint(0, width - w + 1)
            return x, y, x + w, y + h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    x, y = (width - w) // 2, (height - h) // 2
    return x, y, x + w, y + h


def resize_short_edge(width: int, height: int,
                      size: int) -> Tuple[int, int]:
    """``(width, height)`` after torchvision's ``Resize(size)``: the short
    edge becomes ``size``, the long one ``int(size * long / short)``."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def center_crop_offsets(width: int, height: int,
                        crop: int) -> Tuple[int, int]:
    """``(left, top)`` of torchvision's ``CenterCrop(crop)``."""
    return (int(round((width - crop) / 2.0)), int(round(
        (height - crop) / 2.0)))


def reduction(box_w: float, box_h: float, out_w: int, out_h: int,
              largest: int = 8) -> int:
    """The largest JPEG decoding reduction (1, 2, 4 or 8) that keeps at
    least ``out_w x out_h`` pixels in a ``box_w x box_h`` region."""
    for factor in (8, 4, 2):
        if (factor <= largest and box_w / factor >= out_w
                and box_h / factor >= out_h):
            return factor
    return 1


def box_to_raw(box: Box, raw_width: float, raw_height: float,
               orientation: int) -> Box:
    """Map a box on the displayed image to the stored (raw) image.

    Args:
        box (tuple): ``(x0, y0, x1, y1)`` on the displayed image.
        raw_width (float): Width of the stored image.
        raw_height (float): Height of the stored image.
        orientation (int): EXIF orientation, 1..8.

    Returns:
        tuple: The same pixels' box on the stored image.
    """
    x0, y0, x1, y1 = box
    W, H = raw_width, raw_height
    return {
        1: (x0, y0, x1, y1),
        2: (W - x1, y0, W - x0, y1),
        3: (W - x1, H - y1, W - x0, H - y0),
        4: (x0, H - y1, x1, H - y0),
        5: (y0, x0, y1, x1),
        6: (y0, H - x1, y1, H - x0),
        7: (W - y1, H - x1, W - y0, H - x0),
        8: (W - y1, x0, W - y0, x1),
    }[orientation]


def orient_array(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored ``H x W x C`` image to its displayed orientation
    (as ``PIL.ImageOps.exif_transpose``); a view, not a copy."""
    if orientation in TRANSPOSING:
        img = img.swapaxes(0, 1)
    flips = {2: (1, ), 3: (0, 1), 4: (0, ), 6: (1, ), 7: (0, 1), 8: (0, )}
    for axis in flips.get(orientation, ()):
        img = np.flip(img, axis)
    return img


def orient_tensor(img: torch.Tensor, orientation: int) -> torch.Tensor:
    """:func:`orient_array` for ``C x H x W`` tensors (any device)."""
    if orientation in TRANSPOSING:
        img = img.transpose(-2, -1)
    dims = {2: (-1, ), 3: (-2, -1), 4: (-2, ), 6: (-1, ), 7: (-2, -1),
            8: (-2, )}.get(orientation)
    return img.flip(dims) if dims else img


def torchvision_decoder():
    """``torchvision.io.decode_jpeg``, or None where torchvision has none
    (it is deprecated since torchvision 0.29 in favour of TorchCodec)."""
    try:
        from torchvision.io import decode_jpeg
    except ImportError:
        return None
    return decode_jpeg


BACKENDS = ('torchvision', 'cv2', 'pillow')


def decode(data: bytearray, header: ImageHeader, path: str, factor: int,
           backend: str) -> Tuple[np.ndarray, str]:
    """Decode an image, displayed orientation, reduced ``factor`` times.

    Only plain JPEGs are decoded at reduced size (``factor`` is ignored for
    other files), by OpenCV unless ``backend='pillow'``; the result is
    ``ceil(size / factor)`` pixels. Full-size JPEGs are decoded by
    ``torchvision.io.decode_jpeg`` (libjpeg-turbo, the least overhead:
    same pixels, about 15% faster than OpenCV here), OpenCV or Pillow as
    ``backend`` says; other files (PNG, GIF, CMYK JPEGs ...) by Pillow.

    Args:
        data (bytearray): The encoded file.
        header (ImageHeader): Its header (:func:`read_header`).
        path (str): The file, for error messages.
        factor (int): 1, 2, 4 or 8.
        backend (str): ``'torchvision'``, ``'cv2'`` or ``'pillow'``.

    Returns:
        tuple: ``H x W x 3`` uint8 array (possibly a non-contiguous view)
        and its channel order, ``'bgr'`` or ``'rgb'``.

    Raises:
        ValueError: The data cannot be decoded.
    """
    if backend == 'torchvision' and header.plain_jpeg and factor == 1:
        from torchvision.io import ImageReadMode
        with warnings.catch_warnings():  # its deprecation, on every call
            warnings.simplefilter('ignore', DeprecationWarning)
            try:
                chw = torchvision_decoder()(
                    torch.frombuffer(data, dtype=torch.uint8),
                    mode=ImageReadMode.RGB, apply_exif_orientation=True)
            except RuntimeError as err:
                raise ValueError(f'"{path}" cannot be decoded ({err}). '
                                 'Re-download or re-extract it.') from err
        # libjpeg writes rows of RGB pixels: the CHW result is a view.
        return chw.permute(1, 2, 0).numpy(), 'rgb'
    if backend != 'pillow' and header.plain_jpeg:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_FLAGS[factor])
        if img is not None:
            return img, 'bgr'
        # A JPEG OpenCV rejects: Pillow below tries and, if it fails too,
        # gives the error.
    try:
        with Image.open(io.BytesIO(data)) as pil:
            if factor > 1 and header.plain_jpeg:
                pil.draft(pil.mode, (header.raw_width // factor,
                                     header.raw_height // factor))
            if pil.mode != 'RGB':
                pil = pil.convert('RGB')
            img = np.asarray(pil)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f'"{path}" cannot be decoded ({err}). Re-download '
                         'or re-extract it.') from err
    return orient_array(img, header.orientation), 'rgb'


def resize(img: np.ndarray, size: Tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of ``H x W x 3`` uint8 pixels.

    PyTorch's uint8 kernel for ``antialias=True``: the triangle filter
    stretched by the scale factor that Pillow's ``BILINEAR`` (hence
    torchvision on PIL images) uses, rounded to uint8.

    Args:
        img (np.ndarray): ``H x W x 3`` uint8, any strides.
        size (tuple): ``(height, width)`` of the result.

    Returns:
        torch.Tensor: ``3 x height x width`` uint8, contiguous.
    """
    if any(s < 0 for s in img.strides) or not img.flags.writeable:
        # torch needs positive strides; a writable copy spares it a warning.
        img = np.ascontiguousarray(img) if img.flags.writeable else \
            np.array(img)
    chw = torch.from_numpy(img).permute(2, 0, 1)
    if tuple(chw.shape[1:]) == tuple(size):
        return chw.contiguous()
    return F.interpolate(
        chw[None], size=tuple(size), mode='bilinear', antialias=True,
        align_corners=False)[0]


def reduced_box(box: Box, header: ImageHeader, img_w: int, img_h: int,
                factor: int) -> Tuple[Tuple[int, int, int, int], Box]:
    """Place a box of the displayed image on the image decoded at
    ``1 / factor`` size.

    The box is rounded to whole pixels of the reduced image, i.e. each edge
    moves by at most ``factor / 2`` pixels of the full image (the crop is
    then at least ``2 * 224`` pixels wide, so that is under 0.25% of it):
    exact sub-pixel placement would need a resize with fractional offsets,
    which costs more than the reduced decoding saves. libjpeg reduces the
    stored image to ``ceil(size / factor)`` pixels; where the orientation
    reads a stored axis backwards, that partial pixel comes first, which
    shifts the grid.

    Args:
        box (tuple): ``(x0, y0, x1, y1)`` on the displayed image.
        header (ImageHeader): The image's header.
        img_w (int): Width of the reduced (displayed) image.
        img_h (int): Its height.
        factor (int): The reduction.

    Returns:
        tuple: The whole-pixel box on the reduced image, and the box of the
        displayed full-size image it covers (the crop actually taken).
    """
    if factor == 1:
        x0, y0, x1, y1 = (int(v) for v in box)
        return (x0, y0, x1, y1), (x0, y0, x1, y1)
    dx = img_w - header.width / factor \
        if header.orientation in _X_REVERSED else 0.
    dy = img_h - header.height / factor \
        if header.orientation in _Y_REVERSED else 0.

    def snap(v: float, offset: float, limit: int) -> int:
        return min(max(int(math.floor(v / factor + offset + 0.5)), 0), limit)

    x0, x1 = snap(box[0], dx, img_w), snap(box[2], dx, img_w)
    y0, y1 = snap(box[1], dy, img_h), snap(box[3], dy, img_h)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    taken = ((x0 - dx) * factor, (y0 - dy) * factor, (x1 - dx) * factor,
             (y1 - dy) * factor)
    return (x0, y0, x1, y1), taken


class _DecodeCrop(BaseTransform):
    """Shared part of the decode-and-crop transforms (see the module)."""

    def __init__(self, backend: str, reduced_decoding: bool,
                 channel_order: str, flip_prob: float,
                 decode_on_device: bool, instance_context: Optional[float],
                 bbox_key: str) -> None:
        name = type(self).__name__
        if backend not in BACKENDS:
            raise ValueError(f'{name}: backend must be one of {BACKENDS}, '
                             f'got {backend!r}')
        if backend == 'torchvision' and torchvision_decoder() is None:
            raise ValueError(f'{name}: this torchvision has no '
                             'torchvision.io.decode_jpeg; use backend="cv2"')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f'{name}: channel_order must be "bgr" or '
                             f'"rgb", got {channel_order!r}')
        if not 0 <= flip_prob <= 1:
            raise ValueError(f'{name}: flip_prob must be in [0, 1], got '
                             f'{flip_prob!r}')
        if instance_context is not None and not instance_context > 0:
            raise ValueError(f'{name}: instance_context must be > 0 (or '
                             f'None), got {instance_context!r}')
        self.backend = backend
        self.reduced_decoding = reduced_decoding
        self.channel_order = channel_order
        self.flip_prob = float(flip_prob)
        self.decode_on_device = decode_on_device
        self.instance_context = instance_context
        self.bbox_key = bbox_key

    def plan(self, width: int, height: int) -> Dict:
        """The geometry for a ``width x height`` (displayed) region.

        Returns:
            dict: ``box`` (x0, y0, x1, y1) of the region to resize,
            ``size`` (h, w) it is resized to, and ``window`` (x0, y0, x1,
            y1) cut from the resized image, or None for all of it.
        """
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        """Decode, crop, resize and flip one sample.

        Args:
            results (dict): A sample with ``img_path`` (or an already
                decoded ``img``, in mmcv's BGR order, as the inferencer
                passes it).

        Returns:
            dict: The sample with ``img`` (``H x W x 3`` uint8 in
            ``channel_order``; with ``decode_on_device``, a 1-D uint8
            tensor of the file's bytes and ``decode_plan``), ``img_shape``,
            ``ori_shape``, ``flip``, ``flip_direction`` and, for instance
            crops, ``crop_bbox``.
        """
        path = results.get('img_path', '<image array>')
        data = header = None
        if results.get('img') is None:
            if 'img_path' not in results:
                raise KeyError(f'{type(self).__name__}: the sample has '
                               'neither "img_path" nor "img"')
            data = read_file(path)
            header = read_header(data, path)
            width, height = header.width, header.height
        else:
            height, width = results['img'].shape[:2]
        results['ori_shape'] = (height, width)
        # The instance box first (VAW, WIDER), then the crop inside it.
        ox, oy = 0, 0
        if self.instance_context is not None:
            region = self.instance_region(results, path, width, height)
            ox, oy, x1, y1 = region
            width, height = x1 - ox, y1 - oy
            results['crop_bbox'] = np.array(region, dtype=np.int64)
        geometry = self.plan(width, height)
        x0, y0, x1, y1 = geometry['box']
        geometry['box'] = (x0 + ox, y0 + oy, x1 + ox, y1 + oy)
        flip = bool(self.flip_prob) and np.random.rand() < self.flip_prob
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        out_h, out_w = geometry['size']
        if geometry['window'] is not None:
            wx0, wy0, wx1, wy1 = geometry['window']
            out_h, out_w = wy1 - wy0, wx1 - wx0
        results['img_shape'] = (out_h, out_w)
        if (self.decode_on_device and header is not None
                and header.plain_jpeg):
            results['img'] = torch.frombuffer(data, dtype=torch.uint8)
            results['decode_plan'] = self.device_plan(geometry, header, flip)
            return results
        results['decode_plan'] = None
        results['img'] = self.render(results, data, header, path, geometry,
                                     flip)
        return results

    def instance_region(self, results: dict, path: str, width: int,
                        height: int) -> Tuple[int, int, int, int]:
        """:class:`CropInstance`'s region for the sample's box."""
        if self.bbox_key not in results:
            raise KeyError(
                f'{type(self).__name__}: the sample {path!r} has no '
                f'"{self.bbox_key}"; instance_context is for instance '
                'datasets (VAW, WIDERAttribute), or set bbox_key.')
        region = crop_region(results[self.bbox_key], width, height,
                             self.instance_context)
        if region is None:
            raise ValueError(
                f'{type(self).__name__}: the box '
                f'{list(results[self.bbox_key])} (context '
                f'{self.instance_context}) of {path!r} does not overlap its '
                f'{width}x{height} image. Did the image file change after '
                'the dataset was built?')
        return region

    def render(self, results: dict, data: Optional[bytes],
               header: Optional[ImageHeader], path: str, geometry: Dict,
               flip: bool) -> np.ndarray:
        """Decode (reduced where allowed) and apply the geometry on the
        CPU; ``H x W x 3`` uint8 in ``channel_order``."""
        box = geometry['box']
        out_h, out_w = geometry['size']
        factor = 1
        if header is None:
            img, order = results['img'], 'bgr'  # mmcv's order
            if img.ndim == 2:  # loaded with color_type='grayscale'
                img = np.repeat(img[..., None], 3, axis=2)
        else:
            if self.reduced_decoding and header.plain_jpeg:
                factor = reduction(box[2] - box[0], box[3] - box[1], out_w,
                                   out_h)
            img, order = decode(data, header, path, factor, self.backend)
            if factor > 1 and (img.shape[1] < math.ceil(header.width /
                                                        factor) or
                               img.shape[0] < math.ceil(header.height /
                                                        factor)):
                raise ValueError(f'"{path}" decoded to {img.shape[1]}x'
                                 f'{img.shape[0]} pixels, smaller than its '
                                 f'header\'s {header.width}x{header.height}'
                                 f' / {factor}; the file is damaged')
        results['decode_reduction'] = factor
        if header is not None:
            (x0, y0, x1, y1), taken = reduced_box(box, header, img.shape[1],
                                                  img.shape[0], factor)
        else:
            x0, y0, x1, y1 = taken = tuple(int(v) for v in box)
        results['crop_box'] = taken
        out = resize(img[y0:y1, x0:x1], (out_h, out_w))
        if geometry['window'] is not None:
            wx0, wy0, wx1, wy1 = geometry['window']
            out = out[:, wy0:wy1, wx0:wx1]
        hwc = out.numpy().transpose(1, 2, 0)
        # Views only: PackInputs turns a view of the CHW result back into it
        # without a copy, and makes the one copy of a flipped view.
        if order != self.channel_order:
            hwc = hwc[..., ::-1]
        return hwc[:, ::-1] if flip else hwc

    @staticmethod
    def device_plan(geometry: Dict, header: ImageHeader, flip: bool) -> Dict:
        """The geometry on the stored image, for decoding on the device.

        Returns:
            dict: ``box`` (whole pixels of the stored image), ``size``
            (h, w) to resize it to, ``window`` (x0, y0, x1, y1) of the
            resized image or None, ``orientation`` and ``flip``, applied
            in this order by :class:`DeviceJpegDataPreprocessor`.
        """
        o = header.orientation
        box = tuple(int(v) for v in box_to_raw(
            geometry['box'], header.raw_width, header.raw_height, o))
        h, w = geometry['size']
        window = geometry['window']
        if o in TRANSPOSING:
            h, w = w, h
        if window is not None:
            window = tuple(int(v) for v in box_to_raw(window, w, h, o))
        return dict(box=box, size=(h, w), window=window, orientation=o,
                    flip=flip, raw_size=(header.raw_height,
                                         header.raw_width))

    def _repr_args(self) -> str:
        return (f'backend={self.backend!r}, reduced_decoding='
                f'{self.reduced_decoding}, channel_order='
                f'{self.channel_order!r}, flip_prob={self.flip_prob}, '
                f'decode_on_device={self.decode_on_device}, '
                f'instance_context={self.instance_context}')


@TRANSFORMS.register_module()
class DecodeRandomResizedCrop(_DecodeCrop):
    """Load an image, take a random resized crop and (optionally) flip it.

    Equivalent to ``LoadImageFromFile`` + torchvision's
    ``RandomResizedCrop(scale)`` (bilinear, antialiased) +
    ``RandomHorizontalFlip(flip_prob)``, but the crop is drawn from the
    header's size and a JPEG is decoded at reduced size when the crop keeps
    at least ``scale`` pixels on both sides (see the module docstring).

    **Required Keys:** ``img_path`` (or ``img``); ``instance_bbox`` with
    ``instance_context``.

    **Added Keys:** ``img``, ``img_shape``, ``ori_shape``, ``flip``,
    ``flip_direction``, ``decode_plan`` (None unless decoded on the
    device); when decoded here ``decode_reduction`` (1, 2, 4, 8) and
    ``crop_box``, the ``(x0, y0, x1, y1)`` of the displayed image that was
    resized (the drawn box, rounded to the reduced image's pixels when
    ``decode_reduction > 1``); ``crop_bbox`` with ``instance_context``.

    Args:
        scale (int | tuple): Output size, ``s`` or ``(w, h)``.
        crop_ratio_range (tuple): Range of the crop's area fraction.
            Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple): Range of its aspect ratio (w / h).
            Defaults to (3 / 4, 4 / 3).
        max_attempts (int): Draws before the centre fallback. Defaults 10.
        flip_prob (float): Probability of a horizontal flip. Defaults 0.
        backend (str): Full-size JPEG decoder: ``'torchvision'``
            (default, the fastest here), ``'cv2'`` or ``'pillow'``; reduced
            JPEGs use OpenCV (Pillow with ``'pillow'``), other formats
            Pillow.
        reduced_decoding (bool): Decode JPEGs at reduced size where the
            crop allows it. Defaults to True.
        channel_order (str): ``'bgr'`` (default, as ``LoadImageFromFile``;
            the data preprocessor's ``to_rgb=True`` swaps it) or ``'rgb'``.
        decode_on_device (bool): Leave JPEG decoding to
            :class:`DeviceJpegDataPreprocessor` (other images are still
            decoded here). Defaults to False.
        instance_context (float, optional): Crop the sample's instance box
            (enlarged by this factor, as :class:`CropInstance`) before the
            random crop. Defaults to None (the whole image).
        bbox_key (str): Key of the instance box. Defaults to
            ``'instance_bbox'``.
    """

    def __init__(self,
                 scale=224,
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10,
                 flip_prob: float = 0.,
                 backend: str = 'torchvision',
                 reduced_decoding: bool = True,
                 channel_order: str = 'bgr',
                 decode_on_device: bool = False,
                 instance_context: Optional[float] = None,
                 bbox_key: str = 'instance_bbox') -> None:
        super().__init__(backend, reduced_decoding, channel_order, flip_prob,
                         decode_on_device, instance_context, bbox_key)
        self.out_w, self.out_h = _size_pair(scale, type(self).__name__)
        lo, hi = crop_ratio_range
        if not 0 < lo <= hi:
            raise ValueError(f'{type(self).__name__}: crop_ratio_range must '
                             f'be 0 < min <= max, got {crop_ratio_range!r}')
        lo_r, hi_r = aspect_ratio_range
        if not 0 < lo_r <= hi_r:
            raise ValueError(f'{type(self).__name__}: aspect_ratio_range '
                             'must be 0 < min <= max, got '
                             f'{aspect_ratio_range!r}')
        if max_attempts < 0:
            raise ValueError(f'{type(self).__name__}: max_attempts must be '
                             f'>= 0, got {max_attempts!r}')
        self.crop_ratio_range = (float(lo), float(hi))
        self.aspect_ratio_range = (float(lo_r), float(hi_r))
        self.max_attempts = int(max_attempts)

    def plan(self, width: int, height: int) -> Dict:
        box = random_resized_crop_box(width, height, self.crop_ratio_range,
                                      self.aspect_ratio_range,
                                      self.max_attempts)
        return dict(box=box, size=(self.out_h, self.out_w), window=None)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale=({self.out_w}, {self.out_h}), '
                f'crop_ratio_range={self.crop_ratio_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, '
                f'max_attempts={self.max_attempts}, {self._repr_args()})')


@TRANSFORMS.register_module()
class DecodeResizeCenterCrop(_DecodeCrop):
    """Load an image, resize its short edge and take the centre crop.

    Equivalent to ``LoadImageFromFile`` + torchvision's ``Resize(resize)``
    (bilinear, antialiased; long edge ``int(resize * long / short)``) +
    ``CenterCrop(crop_size)``. A JPEG is decoded at reduced size when its
    short edge stays at least ``resize`` pixels, i.e. when the resize is
    still a reduction.

    **Required Keys** and **Added Keys**: as
    :class:`DecodeRandomResizedCrop` (``flip`` is False).

    Args:
        resize (int): Short edge after resizing. Defaults to 256.
        crop_size (int): Side of the centre crop. Defaults to 224.
        backend, reduced_decoding, channel_order, decode_on_device,
        instance_context, bbox_key: As :class:`DecodeRandomResizedCrop`.
    """

    def __init__(self,
                 resize: int = 256,
                 crop_size: int = 224,
                 backend: str = 'torchvision',
                 reduced_decoding: bool = True,
                 channel_order: str = 'bgr',
                 decode_on_device: bool = False,
                 instance_context: Optional[float] = None,
                 bbox_key: str = 'instance_bbox') -> None:
        super().__init__(backend, reduced_decoding, channel_order, 0.,
                         decode_on_device, instance_context, bbox_key)
        if not (isinstance(resize, int) and isinstance(crop_size, int)
                and 0 < crop_size <= resize):
            raise ValueError(f'{type(self).__name__}: need ints 0 < '
                             f'crop_size <= resize, got resize={resize!r}, '
                             f'crop_size={crop_size!r}')
        self.resize, self.crop_size = resize, crop_size

    def plan(self, width: int, height: int) -> Dict:
        new_w, new_h = resize_short_edge(width, height, self.resize)
        left, top = center_crop_offsets(new_w, new_h, self.crop_size)
        return dict(box=(0, 0, width, height), size=(new_h, new_w),
                    window=(left, top, left + self.crop_size,
                            top + self.crop_size))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(resize={self.resize}, crop_size='
                f'{self.crop_size}, {self._repr_args()})')


def _size_pair(scale, name: str) -> Tuple[int, int]:
    """``s`` or ``(w, h)`` -> ``(w, h)``, positive ints."""
    if isinstance(scale, int):
        scale = (scale, scale)
    if not (isinstance(scale, Sequence) and len(scale) == 2 and all(
            isinstance(s, int) and s > 0 for s in scale)):
        raise ValueError(f'{name}: scale must be a positive int or (w, h), '
                         f'got {scale!r}')
    return int(scale[0]), int(scale[1])


__all__ = [
    'DecodeRandomResizedCrop', 'DecodeResizeCenterCrop', 'ImageHeader',
    'random_resized_crop_box', 'read_header', 'jpeg_header', 'decode',
    'resize', 'reduced_box', 'box_to_raw', 'orient_array', 'orient_tensor'
]
