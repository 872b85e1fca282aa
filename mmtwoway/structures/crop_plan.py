"""Crop geometry shared by the decode transforms and the device decoder:
torchvision's crop draws, EXIF orientation, and the typed plans."""
import math
from typing import NamedTuple, Optional, Tuple

import numpy as np

# (x0, y0, x1, y1): a box, x1 and y1 exclusive.
Box = Tuple[float, float, float, float]
IntBox = Tuple[int, int, int, int]

# EXIF orientations that swap width and height (5-8 turn by 90 degrees).
TRANSPOSING = (5, 6, 7, 8)
# Per EXIF orientation: is the displayed x (y) axis the stored axis read
# backwards? Needed to place a box on an image decoded at reduced size.
X_REVERSED = (2, 3, 6, 7)
Y_REVERSED = (3, 4, 7, 8)
# The axes an orientation flips after its transpose (if any), as
# ``PIL.ImageOps.exif_transpose`` turns a stored image to the displayed one.
_FLIPPED_AXES = {2: ('x', ), 3: ('y', 'x'), 4: ('y', ), 6: ('x', ),
                 7: ('y', 'x'), 8: ('y', )}


class CropGeometry(NamedTuple):
    """What a transform cuts from a (displayed) region and resizes.

    Attributes:
        box: ``(x0, y0, x1, y1)`` of the region to resize.
        size: ``(h, w)`` it is resized to.
        window: ``(x0, y0, x1, y1)`` cut from the resized image, or None
            for all of it.
    """
    box: Box
    size: Tuple[int, int]
    window: Optional[IntBox] = None

    def out_size(self) -> Tuple[int, int]:
        """``(h, w)`` of the result."""
        if self.window is None:
            return self.size
        x0, y0, x1, y1 = self.window
        return y1 - y0, x1 - x0

    def shifted(self, dx: int, dy: int) -> 'CropGeometry':
        """The same geometry with its box moved by ``(dx, dy)``."""
        x0, y0, x1, y1 = self.box
        return self._replace(box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))


class DecodePlan(NamedTuple):
    """The geometry on the stored image, for decoding on the device.

    Applied in this order by ``DeviceJpegDataPreprocessor``: crop ``box``,
    resize to ``size``, cut ``window``, orient, flip. Plain Python numbers:
    nothing needs reading from a device.

    Attributes:
        box: Whole pixels of the stored image.
        size: ``(h, w)`` the box is resized to (stored axes).
        window: ``(x0, y0, x1, y1)`` of the resized image, or None.
        orientation: EXIF orientation, 1..8.
        flip: Mirror the displayed result horizontally.
        raw_size: ``(h, w)`` of the stored image, to check the decoder.
    """
    box: IntBox
    size: Tuple[int, int]
    window: Optional[IntBox]
    orientation: int
    flip: bool
    raw_size: Tuple[int, int]

    @classmethod
    def from_geometry(cls, geometry: CropGeometry, raw_width: int,
                      raw_height: int, orientation: int,
                      flip: bool) -> 'DecodePlan':
        """Map a geometry on the displayed image to the stored image."""
        box = tuple(int(v) for v in box_to_raw(geometry.box, raw_width,
                                                raw_height, orientation))
        h, w = geometry.size
        window = geometry.window
        if orientation in TRANSPOSING:
            h, w = w, h
        if window is not None:
            window = tuple(
                int(v) for v in box_to_raw(window, w, h, orientation))
        return cls(box, (h, w), window, orientation, bool(flip),
                   (raw_height, raw_width))

    def mirrored_axes(self) -> Tuple[bool, bool]:
        """Whether the displayed result reads the stored rows, columns
        backwards (orientation and flip together)."""
        axes = _FLIPPED_AXES.get(self.orientation, ())
        transposed = self.orientation in TRANSPOSING
        # After a transpose, displayed x is stored y and vice versa.
        rows = ('x' if transposed else 'y') in axes
        cols = ('y' if transposed else 'x') in axes
        if self.flip:
            if transposed:
                rows = not rows
            else:
                cols = not cols
        return rows, cols


def random_resized_crop_box(width: int,
                            height: int,
                            scale: Tuple[float, float] = (0.08, 1.0),
                            ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                            max_attempts: int = 10) -> IntBox:
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


def reduced_box(box: Box, width: int, height: int, orientation: int,
                img_w: int, img_h: int,
                factor: int) -> Tuple[IntBox, Box]:
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
        width (int): Displayed width of the full-size image.
        height (int): Its displayed height.
        orientation (int): Its EXIF orientation.
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
    dx = img_w - width / factor if orientation in X_REVERSED else 0.
    dy = img_h - height / factor if orientation in Y_REVERSED else 0.

    def snap(v: float, offset: float, limit: int) -> int:
        return min(max(int(math.floor(v / factor + offset + 0.5)), 0), limit)

    x0, x1 = snap(box[0], dx, img_w), snap(box[2], dx, img_w)
    y0, y1 = snap(box[1], dy, img_h), snap(box[3], dy, img_h)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    taken = ((x0 - dx) * factor, (y0 - dy) * factor, (x1 - dx) * factor,
             (y1 - dy) * factor)
    return (x0, y0, x1, y1), taken


def orient_array(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored ``H x W x C`` image to its displayed orientation
    (as ``PIL.ImageOps.exif_transpose``); a view, not a copy."""
    if orientation in TRANSPOSING:
        img = img.swapaxes(0, 1)
    axes = {'y': 0, 'x': 1}
    for axis in _FLIPPED_AXES.get(orientation, ()):
        img = np.flip(img, axes[axis])
    return img

