"""The one place image files are decoded and resized.

Both the prepare stage and the prediction command find files with `fashion.data.files.walk_image_files` and go
through `decode_rgb` and `preprocess` (together: `load_image`), so a photo is turned into pixels
exactly the same way at training and at prediction time. Any difference here (colour mode
handling, EXIF rotation, resize filter) would silently shift the input distribution between the two.
"""

import math
import os
import re
import stat
import struct
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fashion.data.recipes import FULL_REGION
from fashion.names import RESIZE_MODES

DEFAULT_MAX_PIXELS = 50_000_000
# A photo narrower than this, or longer than it is wide by more than this ratio (either way), is a
# strip, an icon or a broken export: resizing it to a square would be mostly padding or smear.
DEFAULT_MIN_SIDE = 16
DEFAULT_MAX_ASPECT = 10.0

WHITE = 255
# With data.locate face or auto, photos decode at (at least) this many times the model's input size: the
# located box is about a third of a full-body photo's width and should not be enlarged from a draft.
LOCATED_DECODE_FACTOR = 3

# Errors Pillow and its decoders raise for broken data; the decoders are C code and
# plugins written over many years, so the exception type is not consistent. Only
# Pillow calls sit inside the try, so this cannot hide a bug in our own code.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error)

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_INT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class ImageError(Exception):
    """A file that cannot be used as an image; str(err) is a short human reason."""


@dataclass(frozen=True)
class ImageLimits:
    """What a photo's header must show before it is decoded: data.max_pixels, data.min_side, data.max_aspect."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = DEFAULT_MIN_SIDE
    max_aspect: float = DEFAULT_MAX_ASPECT

    @classmethod
    def from_params(cls, params):
        data = params.data
        return cls(data.max_pixels, data.min_side, data.max_aspect)


def decode_rgb(path, max_pixels=DEFAULT_MAX_PIXELS, min_size=None, min_side=DEFAULT_MIN_SIDE,
               max_aspect=DEFAULT_MAX_ASPECT) -> np.ndarray:
    """Decode `path` into an HxWx3 uint8 RGB array. Raises ImageError for anything unusable.

    `min_size` lets JPEGs decode at a reduced scale (DCT scaling), which is much
    faster and lighter for big photos that are going to be shrunk anyway; the
    result stays at least `min_size` on both sides. `min_side` and `max_aspect` refuse
    degenerate shapes (1x100000), read from the header before any pixel is decoded.
    """
    try:
        info = os.stat(path)
    except OSError as err:
        raise ImageError(f"cannot read file: {err.strerror or err}") from err
    if not stat.S_ISREG(info.st_mode):
        raise ImageError("not a regular file")
    if info.st_size == 0:
        raise ImageError("empty file (0 bytes)")

    try:
        with Image.open(path) as img:
            _check_pixel_count(img.size, max_pixels)
            _check_shape(img.size, min_side, max_aspect)
            if min_size and img.format == "JPEG":
                img.draft("RGB", (min_size, min_size))
            # Multi-frame files (GIF, APNG, TIFF) are positioned on frame 0 after open.
            img.load()
            # Returns a new image (rotated, or a plain copy) that outlives the file.
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(_bomb_reason(err, max_pixels)) from err
    except Image.DecompressionBombWarning as err:  # only raised if warnings are errors
        raise ImageError(_bomb_reason(err, max_pixels)) from err
    except UnidentifiedImageError as err:
        raise ImageError("not an image (cannot identify image file)") from err
    except _DECODE_ERRORS as err:
        raise ImageError(f"truncated or corrupt image data: {err}") from err
    return _to_rgb(img)


def resize_image(rgb: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """Resize an HxWx3 uint8 array to (size, size, 3) uint8.

    stretch: ignore the aspect ratio. pad: fit the longer side, pad with white
    (white because alpha is composited on white too, so padding looks like
    background). crop: fill the square and keep the centre.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
        raise ValueError(f"expected a non-empty HxWx3 uint8 array, got {rgb.shape} {rgb.dtype}")

    height, width = rgb.shape[:2]
    if mode == "stretch":
        return _resize(rgb, size, size)

    if mode == "pad":
        scale = size / max(height, width)
        new_h = min(size, max(1, round(height * scale)))
        new_w = min(size, max(1, round(width * scale)))
        canvas = np.full((size, size, 3), WHITE, dtype=np.uint8)
        top, left = (size - new_h) // 2, (size - new_w) // 2
        canvas[top : top + new_h, left : left + new_w] = _resize(rgb, new_w, new_h)
        return canvas

    scale = size / min(height, width)
    new_h = max(size, round(height * scale))
    new_w = max(size, round(width * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    resized = _resize(rgb, new_w, new_h)
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def crop_region(rgb: np.ndarray, region=None) -> np.ndarray:
    """The part of an HxWx3 photo inside `region` (fractions top/bottom of its height, left/right
    of its width; None is the whole photo). At least one pixel is always kept."""
    if not region or region == FULL_REGION:
        return rgb
    height, width = rgb.shape[:2]
    top, left = _fraction_to_pixel(region["top"], height), _fraction_to_pixel(region["left"], width)
    bottom = max(top + 1, round(region["bottom"] * height))
    right = max(left + 1, round(region["right"] * width))
    return np.ascontiguousarray(rgb[top:bottom, left:right])


def decode_size(size: int, region=None) -> int:
    """The smallest side to decode a photo at so that its region still has `size` pixels."""
    if not region:
        return size
    return math.ceil(size / min(region["bottom"] - region["top"], region["right"] - region["left"]))


def decode_side(preprocessing) -> int:
    """The smallest side to decode a photo at for this recipe: enough for its region, and with a located
    neckline box (about a third of a full-body photo's width) enough for that box too."""
    side = decode_size(preprocessing.image_size, preprocessing.region)
    return side if preprocessing.locate == "none" else max(side, LOCATED_DECODE_FACTOR * preprocessing.image_size)


def preprocess_located(rgb: np.ndarray, preprocessing):
    """A decoded photo as a model's input, and where in the photo that input came from (a fashion.data.locate.Location):
    the located box (or the region) cut out, then resized (a recipes.Preprocessing)."""
    from fashion.data.locate import locate

    where = locate(rgb, preprocessing)
    return resize_image(crop_region(rgb, where.region), preprocessing.image_size, preprocessing.resize), where


def preprocess(rgb: np.ndarray, preprocessing) -> np.ndarray:
    """A decoded photo as a model's input (preprocess_located without the location)."""
    return preprocess_located(rgb, preprocessing)[0]


def load_located(path, preprocessing, limits=ImageLimits()):
    """Decode and preprocess, with the location: the single entry point for training and prediction."""
    rgb = decode_rgb(path, limits.max_pixels, decode_side(preprocessing), limits.min_side, limits.max_aspect)
    return preprocess_located(rgb, preprocessing)


def load_image(path, preprocessing, limits=ImageLimits()) -> np.ndarray:
    """load_located without the location."""
    return load_located(path, preprocessing, limits)[0]


def _fraction_to_pixel(fraction, length):
    return min(length - 1, round(fraction * length))


def _check_pixel_count(dims, max_pixels):
    # Called right after Image.open, which has parsed only the header: no pixel
    # data has been decoded or allocated yet.
    width, height = dims
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"image too large: {width}x{height} = {width * height:,} pixels, "
            f"above the limit of {max_pixels:,} (data.max_pixels)"
        )


def _check_shape(dims, min_side, max_aspect):
    # Header only, like the pixel count: a 1x100000 strip is refused before it is decoded.
    width, height = dims
    if min(width, height) < min_side:
        raise ImageError(f"image too small: {width}x{height} pixels; each side must be at least {min_side} "
                         "(data.min_side)")
    aspect = max(width, height) / min(width, height)
    if aspect > max_aspect:
        raise ImageError(f"image too elongated: {width}x{height} pixels, aspect ratio {aspect:.1f}:1 above "
                         f"{max_aspect:g}:1 (data.max_aspect); crop it to the garment")


def _bomb_reason(err, max_pixels):
    """Pillow's own guard fired inside Image.open, before we could see the size."""
    numbers = [int(n) for n in re.findall(r"\d+", str(err))]
    pixels = f"{numbers[0]:,} pixels" if numbers else "too many pixels"
    if max_pixels is not None and numbers and numbers[0] > max_pixels:
        return f"image too large: {pixels}, above the limit of {max_pixels:,} (data.max_pixels)"
    return f"image too large: {pixels}, above Pillow's decompression-bomb limit ({err})"


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in _INT16_MODES or mode in ("I", "F"):
        return _gray_to_rgb(_scale_to_uint8(np.asarray(img), mode))
    if mode in _ALPHA_MODES or "transparency" in img.info:
        return _composite_on_white(np.asarray(img.convert("RGBA")))
    if mode in ("L", "1"):
        return _gray_to_rgb(np.asarray(img.convert("L")))
    # RGB, P, CMYK (Pillow already undoes Adobe's inverted CMYK), YCbCr, LAB, HSV.
    try:
        rgb = img.convert("RGB")
    except ValueError as err:
        raise ImageError(f"unsupported colour mode {mode!r}") from err
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Map high-bit-depth grayscale to 0..255 by range, not by clipping.

    Pillow's own convert("L") clips, which turns any 16-bit photo into white.
    16-bit data is divided by 257 (65535 -> 255 exactly). Mode "I" is how 16-bit
    PNG/TIFF used to open, so values within 0..65535 are read as 16-bit; anything
    else, and float data outside 0..1, is stretched from its min to its max.
    """
    data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(data.min()), float(data.max())
    if mode in _INT16_MODES or (mode == "I" and low >= 0 and high <= 65535):
        scaled = data / 257.0
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = data * 255.0
    elif high > low:
        scaled = (data - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(data)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    # Transparent areas of product photos are background; black (what dropping
    # alpha gives) would invent a dark frame that is not in the picture.
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + WHITE * (1.0 - alpha)
    return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if (height, width) == rgb.shape[:2]:
        return rgb.copy()
    shrinking = width <= rgb.shape[1] and height <= rgb.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=interpolation)
    return np.ascontiguousarray(out, dtype=np.uint8)
