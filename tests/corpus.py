"""Deterministic test files: valid images in awkward modes, broken files, junk to skip.

Shared by several test modules, so the keys and the documented pixel content are
a stable API: add new keys, never change what an existing key means.

Pixel content of the mode zoo (all checked by tests/test_images.py after decoding):

    rgb_jpeg, webp, bmp, tiff   left half RED, right half BLUE (64x48)
    gray_png                    L, value GRAY_LEVEL everywhere
    palette_png                 P, left half RED, right half GREEN
    palette_transparent_png     P, left half RED, right half fully transparent -> WHITE
    rgba_png                    centre square RED opaque, border fully transparent -> WHITE
    la_png                      left half gray 0 opaque, right half transparent -> WHITE
    cmyk_jpeg                   CMYK, pure RED (C=0 M=255 Y=255 K=0)
    gray16_png                  16-bit: left half 65535 (-> 255), right half 32896 (-> 128)
    rgb16_png                   16-bit RGB: R=65535 G=32896 B=0 (-> 255, 128, 0)
    exif_rotated_jpeg           stored 60 wide x 40 tall, BLUE with a RED block in the stored
                                top-left corner, EXIF orientation 6 (rotate 90 clockwise to view):
                                decodes 40 wide x 60 tall with the RED block top-RIGHT
    animated_gif                3 frames: GREEN, RED, BLUE (first frame GREEN)

Lossy formats (JPEG, WebP) only approximate these colours; compare with a tolerance.
"""

import struct
import zlib
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
GRAY_LEVEL = 90

ZOO_SIZE = (64, 48)  # width, height of the two-colour zoo images
EXIF_STORED_SIZE = (60, 40)  # width, height as stored, before orientation 6 is applied
EXIF_ORIENTATION_TAG = 0x0112
BOMB_SIDE = 30_000


def two_halves(left, right, size=ZOO_SIZE) -> np.ndarray:
    """HxWx3 uint8: `left` colour on the left half, `right` on the right half."""
    width, height = size
    arr = np.empty((height, width, 3), dtype=np.uint8)
    arr[:, : width // 2] = left
    arr[:, width // 2 :] = right
    return arr


def write_mode_zoo(folder: Path) -> dict[str, Path]:
    """Valid images in many formats and colour modes, with the known content in the module doc."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    red_blue = Image.fromarray(two_halves(RED, BLUE))
    width, height = ZOO_SIZE
    paths = {}

    def save(key, filename, image, **options):
        paths[key] = folder / filename
        image.save(paths[key], **options)

    save("rgb_jpeg", "rgb.jpg", red_blue, quality=95)
    save("webp", "rgb.webp", red_blue, quality=95)
    save("bmp", "rgb.bmp", red_blue)
    save("tiff", "rgb.tiff", red_blue)
    save("gray_png", "gray.png", Image.new("L", ZOO_SIZE, GRAY_LEVEL))
    save("palette_png", "palette.png", _palette_halves(transparent_right=False))
    save("palette_transparent_png", "palette_transparent.png", _palette_halves(transparent_right=True), transparency=1)
    save("rgba_png", "rgba.png", _rgba_centre_square())
    save("la_png", "la.png", _la_halves())
    save("cmyk_jpeg", "cmyk.jpg", Image.new("CMYK", ZOO_SIZE, (0, 255, 255, 0)), quality=95)
    save("exif_rotated_jpeg", "exif_rotated.jpg", _exif_rotated(), quality=95, exif=_orientation_exif(6))
    _save_animated_gif(paths, folder / "animated.gif")

    # Pillow cannot write 16-bit PNGs from arrays in every mode, OpenCV can (and writes BGR).
    gray16 = np.empty((height, width), dtype=np.uint16)
    gray16[:, : width // 2] = 65535
    gray16[:, width // 2 :] = 32896
    paths["gray16_png"] = folder / "gray16.png"
    cv2.imwrite(str(paths["gray16_png"]), gray16)
    rgb16 = np.empty((height, width, 3), dtype=np.uint16)
    rgb16[:] = (0, 32896, 65535)  # B, G, R
    paths["rgb16_png"] = folder / "rgb16.png"
    cv2.imwrite(str(paths["rgb16_png"]), rgb16)
    return paths


def write_bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Unusable files: name -> (path, substring expected in the ImageError message)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = _encode(Image.fromarray(_gradient()), "JPEG", quality=90)
    png = _encode(Image.fromarray(_gradient()), "PNG")
    files = {
        "corrupt_jpeg": ("corrupt.jpg", _corrupt_jpeg(jpeg), "corrupt"),
        "truncated_png": ("truncated.png", png[: len(png) // 2], "truncated"),
        "zero_byte": ("empty.jpg", b"", "empty file"),
        "text_as_jpg": ("notes.jpg", b"shopping list:\n- milk\n- eggs\n", "not an image"),
        "bomb_png": ("bomb.png", bomb_png(BOMB_SIDE, BOMB_SIDE), f"{BOMB_SIDE * BOMB_SIDE:,} pixels"),
        "truncated_jpeg": ("truncated.jpg", jpeg[: len(jpeg) * 2 // 3], "truncated"),
    }
    result = {}
    for key, (filename, data, reason) in files.items():
        path = folder / filename
        path.write_bytes(data)
        result[key] = (path, reason)
    return result


def write_hidden_and_links(folder: Path) -> dict[str, Path]:
    """Files folder discovery must skip, including symlink loops a naive walk never leaves."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        ".DS_Store": folder / ".DS_Store",
        "._photo.jpg": folder / "._photo.jpg",
        "Thumbs.db": folder / "Thumbs.db",
        "loop_a.jpg": folder / "loop_a.jpg",
        "loop_b.jpg": folder / "loop_b.jpg",
        "subdir_loop": folder / "subdir_loop",
    }
    paths[".DS_Store"].write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(range(256)))
    # AppleDouble resource fork: magic 0x00051607, looks like a .jpg by name only.
    paths["._photo.jpg"].write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + bytes(64))
    paths["Thumbs.db"].write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))  # OLE2 header
    paths["loop_a.jpg"].symlink_to("loop_b.jpg")
    paths["loop_b.jpg"].symlink_to("loop_a.jpg")
    paths["subdir_loop"].symlink_to("..", target_is_directory=True)
    return paths


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height RGB pixels (a decompression bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(bytes(1 + 3 * 16))  # one short filtered row: enough to look plausible
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gradient(size=(96, 64)) -> np.ndarray:
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                     np.full((height, width), 128.0)], axis=2).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _corrupt_jpeg(jpeg: bytes) -> bytes:
    """Intact JPEG headers, then scan data full of invalid markers.

    Plain random scan bytes are not enough: libjpeg only warns about bad entropy
    data and returns garbage pixels. Reserved markers (0xFFC8) make it give up.
    """
    sos = jpeg.index(b"\xff\xda")
    header_end = sos + 2 + struct.unpack(">H", jpeg[sos + 2 : sos + 4])[0]
    return jpeg[:header_end] + b"\x12\x34\xff\xc8" * 64 + b"\xff\xd9"


def _palette_halves(transparent_right: bool) -> Image.Image:
    # Index 0 = RED, index 1 = GREEN (or the transparent index, see transparency=1).
    indices = np.zeros((ZOO_SIZE[1], ZOO_SIZE[0]), dtype=np.uint8)
    indices[:, ZOO_SIZE[0] // 2 :] = 1
    image = Image.frombytes("P", ZOO_SIZE, indices.tobytes())
    image.putpalette([*RED, *GREEN] + [0, 0, 0] * 254)
    return image


def _rgba_centre_square() -> Image.Image:
    width, height = ZOO_SIZE
    rgba = np.zeros((height, width, 4), dtype=np.uint8)  # transparent black: must not show as black
    rgba[16:32, 24:40] = (*RED, 255)
    return Image.fromarray(rgba)


def _la_halves() -> Image.Image:
    width, height = ZOO_SIZE
    la = np.zeros((height, width, 2), dtype=np.uint8)
    la[:, : width // 2, 1] = 255
    return Image.fromarray(la)  # (H, W, 2) uint8 is LA


def _exif_rotated() -> Image.Image:
    width, height = EXIF_STORED_SIZE
    arr = np.empty((height, width, 3), dtype=np.uint8)
    arr[:] = BLUE
    arr[:12, :12] = RED
    return Image.fromarray(arr)


def _orientation_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    return exif.tobytes()


def _save_animated_gif(paths: dict, path: Path) -> None:
    frames = [Image.new("RGB", ZOO_SIZE, colour) for colour in (GREEN, RED, BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    paths["animated_gif"] = path
