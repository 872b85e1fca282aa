"""Decoding fused with the crop: ``DecodeRandomResizedCrop`` and
``DecodeResizeCenterCrop`` draw the crop from the header, decode JPEGs at
reduced size where the crop allows it, and resize with antialiasing."""
import io
import math
import os
import warnings
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS
from PIL import Image, UnidentifiedImageError

from mmtwoway.structures.crop_plan import (CropGeometry, DecodePlan,
                                           center_crop_offsets, orient_array,
                                           random_resized_crop_box,
                                           reduced_box, reduction,
                                           resize_short_edge)
from ..image_header import ImageHeader, read_header
from .crop_instance import crop_region

_CV2_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8
}


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


class _DecodeCrop(BaseTransform):
    """Shared part of the decode-and-crop transforms.

    How they split the work between the worker and the device is told in
    ``docs/data_pipeline.md``.
    """

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

    def plan(self, width: int, height: int) -> CropGeometry:
        """The geometry for a ``width x height`` (displayed) region."""
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
        geometry = self.plan(width, height).shifted(ox, oy)
        flip = bool(self.flip_prob) and np.random.rand() < self.flip_prob
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        results['img_shape'] = geometry.out_size()
        # Only what nvJPEG decodes leaves the worker encoded; the rest
        # (PNG, CMYK, lossless, arithmetic-coded, 12-bit ...) is decoded here.
        if self.decode_on_device and header is not None and header.nvjpeg:
            results['img'] = torch.frombuffer(data, dtype=torch.uint8)
            results['decode_plan'] = DecodePlan.from_geometry(
                geometry, header.raw_width, header.raw_height,
                header.orientation, flip)
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
               header: Optional[ImageHeader], path: str,
               geometry: CropGeometry,
               flip: bool) -> np.ndarray:
        """Decode (reduced where allowed) and apply the geometry on the
        CPU; ``H x W x 3`` uint8 in ``channel_order``."""
        box = geometry.box
        out_h, out_w = geometry.size
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
            (x0, y0, x1, y1), taken = reduced_box(
                box, header.width, header.height, header.orientation,
                img.shape[1], img.shape[0], factor)
        else:
            x0, y0, x1, y1 = taken = tuple(int(v) for v in box)
        results['crop_box'] = taken
        out = resize(img[y0:y1, x0:x1], (out_h, out_w))
        if geometry.window is not None:
            wx0, wy0, wx1, wy1 = geometry.window
            out = out[:, wy0:wy1, wx0:wx1]
        hwc = out.numpy().transpose(1, 2, 0)
        # Views only: PackInputs turns a view of the CHW result back into it
        # without a copy, and makes the one copy of a flipped view.
        if order != self.channel_order:
            hwc = hwc[..., ::-1]
        return hwc[:, ::-1] if flip else hwc

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
    at least ``scale`` pixels on both sides (``docs/data_pipeline.md``).

    **Required Keys:** ``img_path`` (or ``img``); ``instance_bbox`` with
    ``instance_context``.

    **Added Keys:** ``img``, ``img_shape``, ``ori_shape``, ``flip``,
    ``flip_direction``, ``decode_plan`` (a
    :class:`~mmtwoway.structures.crop_plan.DecodePlan` when left to the
    device, else None); when decoded here ``decode_reduction`` (1, 2, 4,
    8) and ``crop_box``, the ``(x0, y0, x1, y1)`` of the displayed image
    that was resized (the drawn box, rounded to the reduced image's pixels
    when ``decode_reduction > 1``); ``crop_bbox`` with ``instance_context``.

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
        decode_on_device (bool): Leave the JPEGs nvJPEG decodes to
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

    def plan(self, width: int, height: int) -> CropGeometry:
        box = random_resized_crop_box(width, height, self.crop_ratio_range,
                                      self.aspect_ratio_range,
                                      self.max_attempts)
        return CropGeometry(box, (self.out_h, self.out_w))

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

    def plan(self, width: int, height: int) -> CropGeometry:
        new_w, new_h = resize_short_edge(width, height, self.resize)
        left, top = center_crop_offsets(new_w, new_h, self.crop_size)
        return CropGeometry((0, 0, width, height), (new_h, new_w),
                            (left, top, left + self.crop_size,
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
    'DecodeRandomResizedCrop', 'DecodeResizeCenterCrop', 'decode', 'resize',
    'read_file'
]
