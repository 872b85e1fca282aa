"""JPEG decoding of the batch on the GPU (nvJPEG through torchvision), then
one batched crop, resize, orientation and flip; ``docs/data_pipeline.md``
tells what goes to the device and why the stream is drained first."""
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmpretrain.registry import MODELS

from mmtwoway.structures.crop_plan import TRANSPOSING, DecodePlan
from .color_augment import ColorAugmentDataPreprocessor

DECODE_DEVICES = ('auto', 'cuda', 'cpu')
# Bytes of one padded chunk of crops (uint8 and float copies): a batch of
# 128 COCO images (crops up to 640 x 640) is one chunk.
CHUNK_BYTES = 1 << 30


class DeviceDecodeWarning(UserWarning):
    """A JPEG the device could not decode, decoded on the CPU instead."""


def drain(device: torch.device) -> None:
    """Wait for the work queued on ``device``'s current stream.

    nvJPEG's hardware path, as torchvision wraps it, allocates the output on
    the caller's stream from the caching allocator and writes into it before
    the work already queued on that stream has run, so it can overwrite
    blocks that the previous step freed but whose kernels still read them
    (pytorch/vision PR 9606, closed unmerged: an H100 harness corrupted 134
    of 200 iterations; torchcodec PR 1634, merged, synchronizes the stream
    before the hardware decode). The decoder waits on the host before it
    returns anyway, so this costs no wall time; it is the one deliberate
    synchronization of the GPU-decode config.
    """
    torch.cuda.current_stream(device).synchronize()


def decode_batch(encoded: List[torch.Tensor], paths: Sequence[str],
                 device: torch.device) -> List[torch.Tensor]:
    """Decode JPEG bytes to ``3 x H x W`` uint8 RGB, the batch in one call.

    A file the device fails on is decoded on the CPU instead, with a
    :class:`DeviceDecodeWarning` naming it; training goes on.

    Args:
        encoded (list[torch.Tensor]): 1-D uint8 host tensors, the files.
        paths (Sequence[str]): The files' names, for messages.
        device (torch.device): Where to decode.

    Returns:
        list[torch.Tensor]: The images as stored, on ``device`` (or on the
        CPU for the files decoded there).

    Raises:
        ValueError: A file the CPU cannot decode either (it is damaged).
    """
    from torchvision.io import ImageReadMode, decode_jpeg
    mode = ImageReadMode.RGB
    on_gpu = device.type == 'cuda'
    with warnings.catch_warnings():  # deprecated since torchvision 0.29
        warnings.simplefilter('ignore', DeprecationWarning)
        if on_gpu:
            drain(device)
        try:
            return decode_jpeg(encoded, mode=mode, device=device)
        except RuntimeError:
            pass  # one file at a time below: find and fall back for it
        out = []
        for data, path in zip(encoded, paths):
            try:
                if on_gpu:
                    drain(device)
                out.append(decode_jpeg(data, mode=mode, device=device))
                continue
            except RuntimeError as err:
                if not on_gpu:
                    raise damaged(path, device, err) from err
                warnings.warn(
                    f'"{path}" could not be decoded on {device} ({err}); '
                    'it was decoded on the CPU instead',
                    DeviceDecodeWarning, stacklevel=2)
            out.append(decode_on_cpu(data, path))
    return out


def decode_on_cpu(data: torch.Tensor, path: str) -> torch.Tensor:
    """``decode_jpeg`` on the CPU (libjpeg-turbo), or an error naming the
    file."""
    from torchvision.io import ImageReadMode, decode_jpeg
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError as err:
            raise damaged(path, 'cpu', err) from err


def damaged(path: str, device: object, err: Exception) -> ValueError:
    """The error for a file no decoder can read."""
    return ValueError(f'"{path}" cannot be decoded on {device} ({err}). '
                      'Re-download or re-extract it.')


def aa_weights(in_size: int, out_size: int) -> np.ndarray:
    """The ``out_size x in_size`` matrix of PyTorch's antialiased bilinear
    resize (``F.interpolate(..., antialias=True)``, Pillow's ``BILINEAR``):
    a triangle filter stretched by the scale factor when shrinking."""
    scale = in_size / out_size
    support = scale if scale >= 1 else 1.
    inv = 1. / scale if scale >= 1 else 1.
    centre = scale * (np.arange(out_size) + 0.5)
    # As PyTorch: truncate to whole pixels, then clip to the image.
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((centre + support + 0.5).astype(np.int64), in_size)
    j = np.arange(in_size)
    w = np.clip(1 - np.abs((j[None] - centre[:, None] + 0.5) * inv), 0, None)
    w[(j[None] < lo[:, None]) | (j[None] >= hi[:, None])] = 0
    return w / np.maximum(w.sum(1, keepdims=True), 1e-12)


def plan_weights(plan: DecodePlan) -> Tuple[np.ndarray, np.ndarray, bool]:
    """The plan as two resize matrices on the displayed axes.

    Returns:
        tuple: ``rows`` (``h x crop rows``) and ``cols`` (``w x crop
        columns``) of the displayed result, and whether the crop is read
        transposed; orientation, window and flip are folded in.
    """
    x0, y0, x1, y1 = plan.box
    h, w = plan.size
    rows, cols = aa_weights(y1 - y0, h), aa_weights(x1 - x0, w)
    if plan.window is not None:
        wx0, wy0, wx1, wy1 = plan.window
        rows, cols = rows[wy0:wy1], cols[wx0:wx1]
    rows_back, cols_back = plan.mirrored_axes()
    rows = rows[::-1] if rows_back else rows
    cols = cols[::-1] if cols_back else cols
    if plan.orientation in TRANSPOSING:
        return cols, rows, True
    return rows, cols, False


def crop_view(img: torch.Tensor, plan: DecodePlan,
              transposed: bool) -> torch.Tensor:
    """The plan's box of a ``3 x H x W`` image, transposed if asked: one
    strided view, whatever the image's own strides."""
    x0, y0, x1, y1 = plan.box
    sc, sy, sx = img.stride()
    size, stride = (3, y1 - y0, x1 - x0), (sc, sy, sx)
    if transposed:
        size, stride = (3, x1 - x0, y1 - y0), (sc, sx, sy)
    return img.as_strided(size, stride,
                          img.storage_offset() + y0 * sy + x0 * sx)


def render_batch(images: Sequence[torch.Tensor], plans: Sequence[DecodePlan],
                 device: torch.device) -> torch.Tensor:
    """Apply decode plans to decoded images, as a batch.

    Each plan's crop, antialiased bilinear resize (Pillow's ``BILINEAR``,
    as the workers' uint8 resize), window, orientation and flip are two
    matrices per image: the crops are copied into one padded uint8 buffer
    (its padding meets zero weights) and resized by two batched matrix
    products, chunked to :data:`CHUNK_BYTES`.

    Args:
        images (Sequence[torch.Tensor]): uint8 ``3 x H x W``, as stored.
        plans (Sequence[DecodePlan]): One per image, all with the same
            output size.
        device (torch.device): Where to render.

    Returns:
        torch.Tensor: float ``N x 3 x h x w`` on ``device``, unrounded.
    """
    weights = [plan_weights(p) for p in plans]
    chunks, start = [], 0
    while start < len(plans):  # consecutive runs under the memory budget
        stop, height, width = start, 1, 1
        while stop < len(plans):
            rows, cols, _ = weights[stop]
            h, w = max(height, rows.shape[1]), max(width, cols.shape[1])
            if stop > start and (stop + 1 - start) * 15 * h * w > CHUNK_BYTES:
                break
            height, width, stop = h, w, stop + 1
        chunks.append(_render_chunk(images[start:stop], plans[start:stop],
                                    weights[start:stop], height, width,
                                    device))
        start = stop
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def _render_chunk(images, plans, weights, height: int, width: int,
                  device: torch.device) -> torch.Tensor:
    """:func:`render_batch` of crops that fit ``height x width``."""
    n = len(plans)
    out_h, out_w = weights[0][0].shape[0], weights[0][1].shape[0]
    host = np.zeros((n, out_h * height + out_w * width), np.float32)
    buffer = torch.empty((n, 3, height, width), dtype=torch.uint8,
                         device=device)
    for k, (img, plan, (rows, cols, transposed)) in enumerate(
            zip(images, plans, weights)):
        if rows.shape[0] != out_h or cols.shape[0] != out_w:
            raise ValueError('DeviceJpegDataPreprocessor: the samples of a '
                             'batch must have one output size, got '
                             f'{(out_h, out_w)} and {plan}')
        h, w = rows.shape[1], cols.shape[1]
        host[k, :out_h * height].reshape(out_h, height)[:, :h] = rows
        host[k, out_h * height:].reshape(out_w, width)[:, :w] = cols
        # The pad of each crop stays as allocated: any uint8 value times a
        # zero weight is zero.
        buffer.as_strided((3, h, w), (height * width, width, 1),
                          k * 3 * height * width).copy_(
                              crop_view(img, plan, transposed),
                              non_blocking=True)
    host = torch.from_numpy(host)
    if device.type == 'cuda' and torch.cuda.is_available():
        host = host.pin_memory()
    flat = host.to(device, non_blocking=True)  # one copy for the chunk
    rows = flat[:, :out_h * height].view(n, 1, out_h, height)
    cols = flat[:, out_h * height:].view(n, 1, out_w, width)
    # Weights in full float32 precision (not TF32): the pixels must match
    # the workers' resize to a fraction of a grey level.
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision('highest')
    try:
        return rows @ (buffer.float() @ cols.transpose(-2, -1))
    finally:
        torch.set_float32_matmul_precision(precision)


@MODELS.register_module()
class DeviceJpegDataPreprocessor(ColorAugmentDataPreprocessor):
    """:class:`ColorAugmentDataPreprocessor` that first decodes the batch's
    JPEGs, on the GPU by default.

    The workers leave encoded only what nvJPEG decodes (baseline, extended
    or progressive 8-bit Huffman, YCbCr or grey) and decode the rest
    themselves; those arrive as pixels and join the batch as they are.
    Needs ``collate_fn=dict(type='pseudo_collate')`` (the encoded files
    differ in length) and ``PackInputs`` keeping ``decode_plan`` in its
    ``meta_keys``.

    Args:
        decode_device (str): ``'auto'`` (default): the preprocessor's
            device when it is a GPU, else the CPU of the main process with
            the same torchvision call; ``'cuda'``: always the GPU (an error
            without CUDA); ``'cpu'``: always the CPU.
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

    def float_rgb(self, data: dict) -> torch.Tensor:
        """Decode and render the encoded images; swap and convert the
        others; the batch on the device as float RGB."""
        inputs = data['inputs']
        samples = data.get('data_samples')
        if isinstance(inputs, torch.Tensor) or samples is None:
            return super().float_rgb(data)
        encoded, paths, plans = [], [], []
        for img, sample in zip(inputs, samples):
            if img.dim() != 1:  # decoded by the worker
                continue
            plan: Optional[DecodePlan] = sample.metainfo.get('decode_plan')
            path = sample.metainfo.get('img_path', '<unknown>')
            if plan is None:
                raise KeyError(
                    f'DeviceJpegDataPreprocessor: the sample "{path}" is '
                    'encoded but has no "decode_plan" in its metainfo; '
                    'add "decode_plan" to the meta_keys of PackInputs')
            encoded.append(img.cpu())  # decode_jpeg reads host bytes
            paths.append(path)
            plans.append(DecodePlan(*plan))
        if not encoded:
            return self.worker_pixels(inputs)
        decoder = self.decoder_device()
        pixels = decode_batch(encoded, paths, decoder)
        for k, (img, plan, path) in enumerate(zip(pixels, plans, paths)):
            if tuple(img.shape[1:]) != tuple(plan.raw_size):
                if img.device.type == 'cpu':
                    raise ValueError(
                        f'"{path}" decoded to {tuple(img.shape[1:])} (h, w) '
                        f'but its header says {tuple(plan.raw_size)}; the '
                        'file is damaged')
                warnings.warn(
                    f'"{path}" decoded on {decoder} to '
                    f'{tuple(img.shape[1:])} (h, w), not its header\'s '
                    f'{tuple(plan.raw_size)}; it was decoded on the CPU '
                    'instead', DeviceDecodeWarning)
                pixels[k] = decode_on_cpu(encoded[k], path)
        rendered = render_batch(pixels, plans, self.device)
        if len(encoded) == len(inputs):
            return rendered
        # Worker-decoded images (PNG, CMYK ...) take their places in order.
        decoded = iter(rendered)
        return torch.stack([
            next(decoded) if img.dim() == 1 else self.worker_pixels([img])[0]
            for img in inputs
        ])

    def worker_pixels(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Images the workers decoded (``C x H x W`` uint8) as a float RGB
        batch on the device."""
        out = []
        for img in images:
            img = img.to(self.device, non_blocking=True)
            if self.swap_channels and img.size(0) == 3:
                img = img.flip(0)
            out.append(img.float())
        return torch.stack(out)
