"""JPEG decoding of the whole batch on the GPU (nvJPEG via torchvision).

With ``decode_on_device=True``, :class:`~mmtwoway.datasets.transforms.
DecodeRandomResizedCrop` and ``DecodeResizeCenterCrop`` leave each JPEG
encoded: the dataloader workers only read the file, draw the crop and flip
from its header, and pass the bytes with a *decode plan*. This
preprocessor decodes the batch with ``torchvision.io.decode_jpeg(...,
device='cuda')``, then per image crops, resizes (bilinear, antialiased),
orients (EXIF) and flips on the GPU, and continues as
:class:`ColorAugmentDataPreprocessor`. Images the workers decoded
themselves (PNGs, CMYK JPEGs: not nvJPEG's) arrive as pixels and join the
batch as they are.

Where the decoding runs is ``decode_device``:

* ``'auto'`` (default): on the preprocessor's device when that is a GPU,
  else on the CPU with the same torchvision call (libjpeg-turbo), so a
  config runs unchanged on a machine without CUDA (slower than decoding in
  the workers, since the main process decodes the whole batch);
* ``'cuda'``: always on the GPU; without CUDA it is an error;
* ``'cpu'``: always on the CPU of the main process.
"""
import warnings
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from mmtwoway.datasets.transforms.decode import orient_tensor
from .color_augment import ColorAugmentDataPreprocessor

DECODE_DEVICES = ('auto', 'cuda', 'cpu')


def render(img: torch.Tensor, plan: Dict) -> torch.Tensor:
    """Apply a decode plan to a decoded ``3 x H x W`` image.

    Crop ``box``, resize to ``size`` (bilinear, antialiased, as Pillow's
    ``BILINEAR``), cut ``window``, orient, flip; the plan is on the stored
    image (see ``DecodeRandomResizedCrop.device_plan``).

    Args:
        img (torch.Tensor): uint8 ``3 x H x W``, the image as stored.
        plan (dict): ``box``, ``size``, ``window``, ``orientation``,
            ``flip`` (Python numbers: nothing is read from the device).

    Returns:
        torch.Tensor: float ``3 x h x w`` on ``img``'s device.
    """
    x0, y0, x1, y1 = plan['box']
    crop = img[:, y0:y1, x0:x1].float()
    out = F.interpolate(crop[None], size=tuple(plan['size']),
                        mode='bilinear', antialias=True,
                        align_corners=False)[0]
    if plan['window'] is not None:
        wx0, wy0, wx1, wy1 = plan['window']
        out = out[:, wy0:wy1, wx0:wx1]
    out = orient_tensor(out, plan['orientation'])
    return out.flip(-1) if plan['flip'] else out


@MODELS.register_module()
class DeviceJpegDataPreprocessor(ColorAugmentDataPreprocessor):
    """:class:`ColorAugmentDataPreprocessor` that first decodes the batch's
    JPEGs, on the GPU by default (see the module docstring).

    Needs ``collate_fn=dict(type='pseudo_collate')`` (the encoded files
    differ in length) and ``PackInputs`` keeping ``decode_plan`` in its
    ``meta_keys``.

    Args:
        decode_device (str): ``'auto'``, ``'cuda'`` or ``'cpu'``.
        **kwargs: As :class:`ColorAugmentDataPreprocessor`. ``to_rgb``
            applies to the images decoded by the workers; the device
            decodes to RGB.
    """

    def __init__(self, decode_device: str = 'auto', **kwargs) -> None:
        super().__init__(**kwargs)
        if decode_device not in DECODE_DEVICES:
            raise ValueError(f'DeviceJpegDataPreprocessor: decode_device '
                             f'must be one of {DECODE_DEVICES}, got '
                             f'{decode_device!r}')
        self.decode_device = decode_device

    def decoder_device(self) -> torch.device:
        """The device that decodes, by ``decode_device``."""
        if self.decode_device == 'cuda' or (self.decode_device == 'auto' and
                                            self.device.type == 'cuda'):
            if not torch.cuda.is_available():
                raise RuntimeError(
                    'DeviceJpegDataPreprocessor: decode_device="cuda" but '
                    'CUDA is not available; use decode_device="auto" (CPU '
                    'fallback) or decode in the dataloader workers '
                    '(decode_on_device=False in the pipeline, '
                    'ColorAugmentDataPreprocessor, default_collate)')
            return self.device if self.device.type == 'cuda' else \
                torch.device('cuda')
        return torch.device('cpu')

    def decode(self, encoded: List[torch.Tensor],
               paths: Sequence[str]) -> List[torch.Tensor]:
        """Decode JPEG bytes to ``3 x H x W`` uint8 RGB, in one call.

        Raises:
            ValueError: A file cannot be decoded (named in the message).
        """
        from torchvision.io import ImageReadMode, decode_jpeg
        device = self.decoder_device()
        with warnings.catch_warnings():  # deprecated since torchvision 0.29
            warnings.simplefilter('ignore', DeprecationWarning)
            try:
                return decode_jpeg(encoded, mode=ImageReadMode.RGB,
                                   device=device)
            except RuntimeError:
                pass
            for data, path in zip(encoded, paths):  # name the culprit
                try:
                    decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
                except RuntimeError as err:
                    raise ValueError(
                        f'"{path}" cannot be decoded on {device} ({err}). '
                        'Re-download or re-extract it.') from err
        raise RuntimeError('DeviceJpegDataPreprocessor: the batch failed to '
                           f'decode on {device}, every file alone did not')

    def float_rgb(self, data: dict) -> torch.Tensor:
        """Decode and render the encoded images; swap and convert the
        others; stack on the device as float RGB."""
        inputs = data['inputs']
        samples = data.get('data_samples')
        if isinstance(inputs, torch.Tensor) or samples is None:
            return super().float_rgb(data)
        encoded, paths, jobs = [], [], []
        for img, sample in zip(inputs, samples):
            if img.dim() != 1:  # decoded by the worker
                jobs.append(None)
                continue
            plan: Optional[Dict] = sample.metainfo.get('decode_plan')
            path = sample.metainfo.get('img_path', '<unknown>')
            if plan is None:
                raise KeyError(
                    f'DeviceJpegDataPreprocessor: the sample "{path}" is '
                    'encoded but has no "decode_plan" in its metainfo; '
                    'add "decode_plan" to the meta_keys of PackInputs')
            encoded.append(img.cpu())  # decode_jpeg reads host bytes
            paths.append(path)
            jobs.append((plan, path))
        decoded = iter(self.decode(encoded, paths) if encoded else [])
        out = []
        for img, job in zip(inputs, jobs):
            if job is None:  # C x H x W pixels
                img = img.to(self.device, non_blocking=True)
                if self.swap_channels and img.size(0) == 3:
                    img = img.flip(0)
                out.append(img.float())
                continue
            plan, path = job
            pixels = next(decoded)
            want = tuple(plan['raw_size'])
            if tuple(pixels.shape[1:]) != want:
                raise ValueError(
                    f'"{path}" decoded to {tuple(pixels.shape[1:])} (h, w) '
                    f'but its header says {want}; the file is damaged')
            out.append(render(pixels.to(self.device, non_blocking=True),
                              plan))
        return torch.stack(out)
