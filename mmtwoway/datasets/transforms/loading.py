"""Image decoding with an error that names the file (docs/bad_input.md).

:func:`decode_image` is shared by ``LoadCheckedImageFromFile`` and the apis.
"""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile
from mmengine import fileio
from mmpretrain.registry import TRANSFORMS

from ..image_header import image_format, truncated_jpeg


class ImageReadError(ValueError):
    """An image file that cannot be decoded.

    Attributes:
        path: The file.
        reason: What is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f'image {path} cannot be read: {reason}')


def decode_image(content: bytes,
                 path: str,
                 flag: str = 'color',
                 channel_order: str = 'bgr',
                 backend: Optional[str] = None) -> np.ndarray:
    """``mmcv.imfrombytes`` of a file's bytes, or an error naming the file.

    mmcv alone gives a ``cv2.error`` without the file for 0 bytes, an
    ``AssertionError`` (gone under ``python -O``) for undecodable bytes and,
    with some OpenCV versions, a grey-filled picture for a truncated JPEG.

    Args:
        content (bytes): The file's bytes.
        path (str): The file, for the message.
        flag, channel_order, backend: As for ``mmcv.imfrombytes``.

    Returns:
        np.ndarray: The decoded image.

    Raises:
        ImageReadError: The file is empty, not an image, truncated or
            damaged.
    """
    if not content:
        raise ImageReadError(path, 'the file is empty (0 bytes)')
    kind = image_format(content)
    if kind == 'JPEG' and truncated_jpeg(content):
        raise ImageReadError(
            path, 'the JPEG is truncated (no end-of-image marker after its '
            'last scan): re-download or re-extract it')
    try:
        img = mmcv.imfrombytes(content, flag, channel_order, backend)
    except Exception as err:  # noqa: BLE001 (cv2.error, PIL errors, ...)
        img, cause = None, f' ({type(err).__name__}: {err})'
    else:
        cause = ''
    if img is None or img.size == 0:
        if kind is None:
            raise ImageReadError(
                path, f'it is not an image file (it starts with '
                f'{content[:12]!r}){cause}')
        raise ImageReadError(
            path, f'the {kind} data cannot be decoded (truncated or '
            f'damaged){cause}: re-download or re-extract it')
    return img


def read_image(path: str,
               flag: str = 'color',
               channel_order: str = 'bgr',
               backend: Optional[str] = None,
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Read and decode an image file, as ``mmcv.imread`` does for a path.

    Args:
        path (str): The image file.
        flag, channel_order, backend: As for ``mmcv.imfrombytes``.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: The image.

    Raises:
        FileNotFoundError: The file does not exist.
        ImageReadError: See :func:`decode_image`.
    """
    content = fileio.get(path, backend_args=backend_args)
    return decode_image(content, path, flag, channel_order, backend)


@TRANSFORMS.register_module()
class LoadCheckedImageFromFile(_MMCVLoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` whose errors name the image file.

    Same arguments and output as mmcv's transform (see there); an image
    that cannot be decoded raises :class:`ImageReadError` (a
    ``ValueError``) naming the file and the reason, unless
    ``ignore_empty=True``, which returns None as mmcv does. A sample that
    already holds an ``img`` passes unchanged: mmpretrain's inferencer
    decodes the image itself and drops only transforms named
    ``LoadImageFromFile`` from the test pipeline.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): The result dict of the dataset.

        Returns:
            dict or None: ``results`` with ``img``, ``img_shape`` and
            ``ori_shape`` (None when ``ignore_empty`` skips the image).
        """
        if 'img_path' not in results and results.get('img') is not None:
            return results  # decoded by mmpretrain's inferencer
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                client = fileio.FileClient.infer_client(
                    self.file_client_args, filename)
                content = client.get(filename)
            else:
                content = fileio.get(filename, backend_args=self.backend_args)
            img = decode_image(content, filename, self.color_type,
                               backend=self.imdecode_backend)
        except Exception:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
