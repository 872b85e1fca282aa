"""The image header reader: frame type, precision and colour space decide
what goes to nvJPEG; sizes and orientation agree with Pillow."""
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from mmtwoway.datasets.image_header import (jpeg_header, read_file_header,
                                            read_header)
from mmtwoway.datasets.images import read_image_size
from mmtwoway.datasets.transforms import (DecodeRandomResizedCrop,
                                          DecodeResizeCenterCrop)
from tools.misc.photos import photo, sample_photos

pytestmark = pytest.mark.filterwarnings(
    'ignore:The image decoding:DeprecationWarning')


@pytest.fixture(scope='module')
def image():
    return photo(160, 120, np.random.default_rng(1), sample_photos())


def sof_offset(data: bytes) -> int:
    """Where the start-of-frame segment begins (its 0xFF byte)."""
    i = 2
    while True:
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return i
        i += 2 + int.from_bytes(data[i + 2:i + 4], 'big')


def patched(data: bytes, marker=None, precision=None, ids=None) -> bytes:
    """A JPEG with its frame marker, precision or component ids rewritten:
    the header of another coding process over the same scan data."""
    out = bytearray(data)
    i = sof_offset(data)
    if marker is not None:
        out[i + 1] = marker
    if precision is not None:
        out[i + 4] = precision
    if ids is not None:
        for k, cid in enumerate(ids):
            out[i + 10 + 3 * k] = cid
    return bytes(out)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def encoded(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, 'JPEG', quality=90, **kw)
    return buf.getvalue()


def test_jpeg_header_reads_what_pillow_reads(image):
    rgb = Image.fromarray(image)
    files = []
    for o in range(1, 9):
        exif = rgb.getexif()
        exif[0x0112] = o
        files.append(encoded(rgb, exif=exif.tobytes()))
    # Big-endian EXIF, written by hand: IFD0 with one SHORT, orientation 6.
    tiff = (b'MM\x00\x2a\x00\x00\x00\x08\x00\x01' +
            b'\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00' +
            b'\x00\x00\x00\x00')
    files.append(encoded(rgb, exif=b'Exif\x00\x00' + tiff))
    files += [encoded(rgb.convert('L')), encoded(rgb.convert('CMYK')),
              encoded(rgb, progressive=True)]
    for data in files:
        fast = jpeg_header(data)
        with Image.open(io.BytesIO(data)) as img:
            assert ((fast.raw_width, fast.raw_height), fast.orientation,
                    fast.format, fast.mode) == (
                        img.size, img.getexif().get(0x0112, 1), img.format,
                        img.mode)
    assert jpeg_header(files[8]).orientation == 6
    assert (jpeg_header(files[5]).width, jpeg_header(files[5]).height) == (
        120, 160)  # orientation 6 turns it by 90 degrees
    # Not a JPEG, or a header cut before its frame: Pillow decides.
    buf = io.BytesIO()
    rgb.save(buf, 'PNG')
    assert jpeg_header(buf.getvalue()) is None
    assert read_header(buf.getvalue(), 'a.png').format == 'PNG'
    assert jpeg_header(files[0][:40]) is None


def test_frame_precision_and_colour_space(image):
    rgb = Image.fromarray(image)
    baseline = encoded(rgb)
    cases = {
        'baseline': (baseline, 0xC0, 8, True),
        'progressive': (encoded(rgb, progressive=True), 0xC2, 8, True),
        'grey': (encoded(rgb.convert('L')), 0xC0, 8, True),
        'cmyk': (encoded(rgb.convert('CMYK')), 0xC0, 8, False),
        'extended 8-bit': (patched(baseline, 0xC1), 0xC1, 8, True),
        'extended 12-bit': (patched(baseline, 0xC1, 12), 0xC1, 12, False),
        'lossless': (patched(baseline, 0xC3), 0xC3, 8, False),
        'hierarchical': (patched(baseline, 0xC5), 0xC5, 8, False),
        'arithmetic': (patched(baseline, 0xC9), 0xC9, 8, False),
        'arithmetic progressive': (patched(baseline, 0xCA), 0xCA, 8, False),
        'RGB stored': (patched(baseline, ids=b'RGB'), 0xC0, 8, False),
    }
    for name, (data, frame, precision, nvjpeg) in cases.items():
        header = jpeg_header(data)
        assert (header.frame, header.precision, header.nvjpeg) == (
            frame, precision, nvjpeg), name
        assert (header.raw_width, header.raw_height) == (160, 120), name
    # CMYK, and a 3-component JPEG with Adobe's "no transform" (RGB).
    assert jpeg_header(cases['cmyk'][0]).mode == 'CMYK'
    adobe = bytearray(baseline)
    segment = b'\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00'
    adobe[2:2] = segment
    assert jpeg_header(bytes(adobe)).nvjpeg is False
    adobe[2 + 15] = 1  # transform 1: YCbCr
    assert jpeg_header(bytes(adobe)).nvjpeg is True
    # Other formats are read by Pillow and never go to the device.
    buf = io.BytesIO()
    rgb.save(buf, 'PNG')
    assert not read_header(buf.getvalue(), 'a.png').nvjpeg


def test_only_nvjpeg_frames_leave_the_worker_encoded(tmp_path, image):
    rgb = Image.fromarray(image)
    baseline = encoded(rgb)
    device = [
        write(tmp_path, 'b.jpg', baseline),
        write(tmp_path, 'p.jpg', encoded(rgb, progressive=True)),
        write(tmp_path, 'g.jpg', encoded(rgb.convert('L'))),
        write(tmp_path, 'e.jpg', patched(baseline, 0xC1)),
    ]
    worker = [
        write(tmp_path, 'c.jpg', encoded(rgb.convert('CMYK'))),
        write(tmp_path, 'l.jpg', patched(baseline, 0xC3)),
        write(tmp_path, 'a.jpg', patched(baseline, 0xC9)),
        write(tmp_path, 't.jpg', patched(baseline, 0xC1, 12)),
    ]
    for cls in (DecodeRandomResizedCrop, DecodeResizeCenterCrop):
        t = cls(decode_on_device=True)
        for path in device:
            out = t(dict(img_path=path))
            assert out['img'].dim() == 1 and out['decode_plan'] is not None
        for path in worker:
            # Decoded here, or (the patched headers do not match their
            # scan data) an error that names the file: never encoded.
            try:
                out = t(dict(img_path=path))
            except ValueError as err:
                assert path in str(err)
                continue
            assert out['decode_plan'] is None and out['img'].ndim == 3
    # Extended sequential 8-bit Huffman is baseline's coding: the same
    # pixels as the baseline file.
    same = [decode_jpeg(torch.frombuffer(bytearray(open(p, 'rb').read()),
                                         dtype=torch.uint8),
                        mode=ImageReadMode.RGB) for p in device[::3]]
    assert torch.equal(same[0], same[1])


def test_sizes_agree_with_pillow(tmp_path, image):
    rgb = Image.fromarray(image)
    paths = []
    for o in (1, 6, 8, 3):
        exif = rgb.getexif()
        exif[0x0112] = o
        paths.append(write(tmp_path, f'o{o}.jpg', encoded(
            rgb, exif=exif.tobytes())))
    # A frame header past the first 64 KiB (a large ICC profile first).
    paths.append(write(tmp_path, 'icc.jpg', encoded(
        rgb, icc_profile=bytes(100_000))))
    rgb.save(tmp_path / 'a.png')
    paths.append(str(tmp_path / 'a.png'))
    for path in paths:
        with Image.open(path) as img:
            w, h = img.size
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
        assert read_image_size(path) == (w, h), path
        assert (read_file_header(path).width,
                read_file_header(path).height) == (w, h)
    broken = write(tmp_path, 'broken.jpg', b'not an image')
    with pytest.raises(ValueError, match='broken.jpg'):
        read_image_size(broken)
