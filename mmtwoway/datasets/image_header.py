"""The one image header reader of mmtwoway: format, size, EXIF orientation
and, for JPEGs, the frame type, precision and components (which decoder can
take the file), read without decoding any pixel."""
import io
import struct
from typing import Optional

from PIL import Image, UnidentifiedImageError

from mmtwoway.structures.crop_plan import TRANSPOSING

EXIF_ORIENTATION = 0x0112  # the EXIF (TIFF) tag

# File signatures of the formats OpenCV reads, to tell a damaged image from
# a file that is no image at all.
_SIGNATURES = {
    b'\xff\xd8\xff': 'JPEG',
    b'\x89PNG\r\n\x1a\n': 'PNG',
    b'BM': 'BMP',
    b'GIF8': 'GIF',
    b'II*\x00': 'TIFF',
    b'MM\x00*': 'TIFF',
    b'P1': 'PBM', b'P2': 'PGM', b'P3': 'PPM',
    b'P4': 'PBM', b'P5': 'PGM', b'P6': 'PPM',
}
# JPEG markers: start of scan, end of image.
SOS, EOI = b'\xff\xda', b'\xff\xd9'
# Start-of-frame markers (every coding process): their segment holds the
# precision, the size and the components. 0xC4, 0xC8 and 0xCC are other
# segments (Huffman tables, reserved, arithmetic conditioning).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# The frames nvJPEG decodes: baseline, extended sequential and progressive,
# Huffman-coded. Lossless (0xC3), hierarchical (0xC5-0xC7, 0xCD-0xCF) and
# arithmetic-coded (0xC9-0xCB) frames are left to the CPU decoders.
NVJPEG_FRAMES = (0xC0, 0xC1, 0xC2)
_JPEG_MODES = {1: 'L', 3: 'RGB', 4: 'CMYK'}
# Component ids 'R', 'G', 'B': a 3-component JPEG stored as RGB, not YCbCr.
_RGB_IDS = (82, 71, 66)
# JPEG colour modes that libjpeg turns into RGB itself.
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
        frame (int): The JPEG start-of-frame marker (0xC0 ... 0xCF), or 0
            when the header was not read from JPEG markers.
        precision (int): Bits per sample of a JPEG (8 or 12; 2-16 for
            lossless), 0 if unknown.
        ycc (bool): A 3-component JPEG stored as YCbCr (not RGB), or a
            greyscale one: the colour spaces nvJPEG converts.
    """

    __slots__ = ('width', 'height', 'raw_width', 'raw_height',
                 'orientation', 'format', 'mode', 'frame', 'precision',
                 'ycc')

    def __init__(self, raw_width: int, raw_height: int, orientation: int,
                 format: str, mode: str, frame: int = 0, precision: int = 0,
                 ycc: bool = False) -> None:
        self.raw_width, self.raw_height = raw_width, raw_height
        self.orientation = orientation if orientation in range(1, 9) else 1
        swap = self.orientation in TRANSPOSING
        self.width, self.height = ((raw_height, raw_width) if swap else
                                   (raw_width, raw_height))
        self.format, self.mode = format, mode
        self.frame, self.precision, self.ycc = frame, precision, ycc

    @property
    def plain_jpeg(self) -> bool:
        """A JPEG in RGB / grey (not CMYK): libjpeg's scaled-IDCT case."""
        return (self.format in ('JPEG', 'MPO')
                and self.mode in _PLAIN_JPEG_MODES)

    @property
    def nvjpeg(self) -> bool:
        """A JPEG that nvJPEG decodes: baseline, extended sequential or
        progressive, 8-bit, Huffman-coded, YCbCr or greyscale."""
        return (self.frame in NVJPEG_FRAMES and self.precision == 8
                and self.ycc)


def image_format(content: bytes) -> Optional[str]:
    """The format a file's first bytes announce, or None."""
    if content[:4] == b'RIFF' and content[8:12] == b'WEBP':
        return 'WebP'
    for signature, name in _SIGNATURES.items():
        if content.startswith(signature):
            return name
    return None


def truncated_jpeg(content: bytes) -> bool:
    """Whether a JPEG's last scan has no end-of-image marker after it.

    Entropy-coded data escapes 0xFF bytes, so the marker cannot occur by
    chance; data appended after the end marker (some cameras do) is fine.
    """
    last_scan = content.rfind(SOS)
    return last_scan < 0 or content.find(EOI, last_scan) < 0


def _exif_orientation(data: bytes, start: int, end: int) -> int:
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


def jpeg_header(data: bytes) -> Optional[ImageHeader]:
    """Read a JPEG's frame, size, components and EXIF orientation from its
    markers.

    Pillow's parser reads every table of the header in Python; this one
    skips to the start-of-frame segment (about 10x faster). Returns None
    for anything it does not follow (not a JPEG, a damaged header), which
    :func:`read_header` then hands to Pillow.
    """
    if data[:2] != b'\xff\xd8':
        return None
    i, n, orientation, adobe = 2, len(data), 1, None
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
        elif (marker == 0xEE and length >= 12
              and data[i + 4:i + 9] == b'Adobe' and i + 16 <= n):
            adobe = data[i + 15]  # colour transform: 0 none, 1 YCC, 2 YCCK
        elif marker in _SOF_MARKERS:
            if i + 10 > n:
                return None
            precision = data[i + 4]
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            components = data[i + 9]
            mode = _JPEG_MODES.get(components)
            if not (width and height and mode):
                return None
            ids = tuple(data[i + 10:i + 10 + 3 * components:3])
            ycc = components == 1 or (components == 3 and (
                adobe == 1 or adobe is None and ids != _RGB_IDS))
            return ImageHeader(width, height, orientation, 'JPEG', mode,
                               marker, precision, ycc)
        elif marker in (0xD9, 0xDA):  # end of image / scan before a frame
            return None
        i += 2 + length
    return None


def read_header(data: bytes, path: str) -> ImageHeader:
    """Parse the header of an encoded image (JPEG markers directly, other
    formats with Pillow).

    Args:
        data (bytes): The file's content (or, for a JPEG, at least the
            part up to its start of frame).
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


def read_file_header(path: str, prefix: int = 1 << 16) -> ImageHeader:
    """:func:`read_header` of a file, reading only its first ``prefix``
    bytes when they hold a JPEG's frame header (the rest otherwise).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not an image Pillow can identify.
    """
    with open(path, 'rb') as f:
        head = f.read(prefix)
        header = jpeg_header(head)
        return header if header is not None else read_header(
            head + f.read(), path)
