"""Decoding and resizing on real files: every check looks at pixels, not just "no exception"."""

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from fashion.data.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    ImageLimits,
    crop_region,
    decode_rgb,
    decode_size,
    load_image,
    resize_image,
)
from fashion.data.recipes import FULL_REGION, Preprocessing
from fashion.names import RESIZE_MODES
from tests import corpus
from tests.corpus import BLUE, GRAY_LEVEL, GREEN, RED, WHITE
from tests.helpers import NECKLINES

BLACK = (0, 0, 0)
LOSSY_TOLERANCE = 16  # JPEG/WebP: solid colours come back within a few levels


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return corpus.write_mode_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return corpus.write_bad_files(tmp_path_factory.mktemp("bad"))


def region(arr, name):
    """Named areas away from colour boundaries, so lossy codecs' ringing does not matter."""
    h, w = arr.shape[:2]
    return {
        "all": arr,
        "left": arr[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8],
        "right": arr[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8],
        "centre": arr[3 * h // 8 : 5 * h // 8, 3 * w // 8 : 5 * w // 8],
        "top": arr[: h // 8],
        "top_left": arr[: h // 8, : w // 8],
        "top_right": arr[: h // 8, -(w // 8) :],
        "bottom": arr[-(h // 8) :],
    }[name]


# key -> (decoded (height, width), {region: colour}, tolerance)
EXPECTED = {
    "rgb_jpeg": ((48, 64), {"left": RED, "right": BLUE}, LOSSY_TOLERANCE),
    "webp": ((48, 64), {"left": RED, "right": BLUE}, LOSSY_TOLERANCE),
    "bmp": ((48, 64), {"left": RED, "right": BLUE}, 0),
    "tiff": ((48, 64), {"left": RED, "right": BLUE}, 0),
    "gray_png": ((48, 64), {"all": (GRAY_LEVEL,) * 3}, 0),
    "palette_png": ((48, 64), {"left": RED, "right": GREEN}, 0),
    "palette_transparent_png": ((48, 64), {"left": RED, "right": WHITE}, 0),
    "rgba_png": ((48, 64), {"centre": RED, "top": WHITE, "bottom": WHITE}, 0),
    "la_png": ((48, 64), {"left": BLACK, "right": WHITE}, 0),
    "cmyk_jpeg": ((48, 64), {"all": RED}, LOSSY_TOLERANCE),
    # 65535 -> 255 and 32896 -> 128: scaled, where Pillow's convert("L") would clip both to 255.
    "gray16_png": ((48, 64), {"left": WHITE, "right": (128, 128, 128)}, 0),
    "rgb16_png": ((48, 64), {"all": (255, 128, 0)}, 0),
    # Stored 60x40 landscape with the marker top-left; orientation 6 turns it portrait, marker top-right.
    "exif_rotated_jpeg": ((60, 40), {"top_right": RED, "top_left": BLUE, "bottom": BLUE}, LOSSY_TOLERANCE),
    "animated_gif": ((48, 64), {"all": GREEN}, 0),
}


def test_zoo_covers_every_expected_key(zoo):
    assert set(zoo) == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_zoo_decodes_to_expected_pixels(zoo, key):
    shape, colours, tolerance = EXPECTED[key]
    rgb = decode_rgb(zoo[key])
    assert rgb.dtype == np.uint8
    assert rgb.shape == (*shape, 3)
    assert rgb.flags.c_contiguous
    for name, colour in colours.items():
        diff = np.abs(region(rgb, name).astype(int) - np.array(colour)).max()
        assert diff <= tolerance, f"{key} {name}: expected {colour}, off by up to {diff}"


def test_grayscale_becomes_three_identical_channels(zoo):
    for key in ("gray_png", "gray16_png", "la_png"):
        rgb = decode_rgb(zoo[key])
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all(), key


def test_high_bit_depth_tiffs_are_scaled_not_clipped(tmp_path):
    """32-bit int within 16-bit range reads as 16-bit; float 0..1 spans 0..255."""
    Image.fromarray(np.array([[0, 257, 65535]], dtype=np.int32)).save(tmp_path / "int32.tiff")
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "float.tiff")
    # 1x3 pixels: below data.min_side, which is lowered here to test the scaling alone.
    assert decode_rgb(tmp_path / "int32.tiff", min_side=1, max_aspect=3)[0, :, 0].tolist() == [0, 1, 255]
    assert decode_rgb(tmp_path / "float.tiff", min_side=1, max_aspect=3)[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize(
    "key", ["corrupt_jpeg", "truncated_png", "zero_byte", "text_as_jpg", "bomb_png", "truncated_jpeg"]
)
def test_bad_files_raise_image_error_with_reason(bad_files, key):
    path, reason = bad_files[key]
    with pytest.raises(ImageError) as caught:
        decode_rgb(path)
    assert reason in str(caught.value)


def test_bomb_is_rejected_from_the_header_alone(bad_files):
    """Decoding 30000x30000 RGB would need 2.7 GB; rejecting it must allocate next to nothing."""
    path, _ = bad_files["bomb_png"]
    tracemalloc.start()
    try:
        with pytest.raises(ImageError) as caught:
            decode_rgb(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert "900,000,000 pixels" in str(caught.value)
    assert f"{DEFAULT_MAX_PIXELS:,}" in str(caught.value)


def test_max_pixels_below_pillows_own_guard(tmp_path):
    """64M pixels passes Pillow's bomb check, so our own header check must catch it."""
    path = tmp_path / "big.png"
    path.write_bytes(corpus.bomb_png(8000, 8000))
    with pytest.raises(ImageError, match=r"8000x8000 = 64,000,000 pixels.*50,000,000 \(data.max_pixels\)"):
        decode_rgb(path)


def test_max_pixels_is_configurable(zoo):
    with pytest.raises(ImageError, match=r"64x48 = 3,072 pixels, above the limit of 3,000"):
        decode_rgb(zoo["bmp"], max_pixels=3000)
    assert decode_rgb(zoo["bmp"], max_pixels=3072).shape == (48, 64, 3)


@pytest.mark.parametrize("size, reason", [
    ((1, 100_000), r"image too small: 1x100000 pixels; each side must be at least 16 \(data.min_side\)"),
    ((100_000, 1), r"image too small: 100000x1 pixels; each side must be at least 16 \(data.min_side\)"),
    ((20, 4000), r"image too elongated: 20x4000 pixels, aspect ratio 200.0:1 above 10:1 \(data.max_aspect\)"),
    ((8, 8), r"image too small: 8x8 pixels"),
])
def test_degenerate_shapes_are_refused_from_the_header(tmp_path, size, reason):
    path = tmp_path / "strip.png"
    Image.new("L", size, 200).save(path)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=reason):
            decode_rgb(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # refused before the pixels are decoded


def test_shape_limits_are_configurable_and_inclusive(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (160, 16), (10, 20, 30)).save(path)  # 16 px high, aspect exactly 10
    assert decode_rgb(path).shape == (16, 160, 3)
    with pytest.raises(ImageError, match="aspect ratio 10.0:1 above 9:1"):
        decode_rgb(path, max_aspect=9)
    with pytest.raises(ImageError, match="at least 17"):
        decode_rgb(path, min_side=17)
    assert load_image(path, Preprocessing(32), ImageLimits(min_side=16, max_aspect=10)).shape == (32, 32, 3)
    with pytest.raises(ImageError, match="data.max_aspect"):
        load_image(path, Preprocessing(32), ImageLimits(max_aspect=4))


def test_missing_file_and_directory_are_image_errors(tmp_path):
    with pytest.raises(ImageError, match="cannot read file"):
        decode_rgb(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="not a regular file"):
        decode_rgb(tmp_path)


def halves(left, right, width, height):
    return corpus.two_halves(left, right, size=(width, height))


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("width,height", [(300, 100), (100, 300), (50, 50), (7, 3)])
def test_resize_shape_and_dtype(mode, width, height):
    out = resize_image(halves(RED, BLUE, width, height), 32, mode)
    assert out.shape == (32, 32, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous


def test_pad_landscape_adds_white_above_and_below():
    out = resize_image(np.full((50, 100, 3), RED, dtype=np.uint8), 50, "pad")
    assert (out[:12] == WHITE).all() and (out[-13:] == WHITE).all()
    assert (out[12:37] == RED).all()


def test_pad_portrait_adds_white_left_and_right():
    out = resize_image(np.full((100, 50, 3), RED, dtype=np.uint8), 50, "pad")
    assert (out[:, :12] == WHITE).all() and (out[:, -13:] == WHITE).all()
    assert (out[:, 12:37] == RED).all()


def test_pad_keeps_a_very_thin_strip_visible():
    out = resize_image(np.zeros((2, 1000, 3), dtype=np.uint8), 100, "pad")
    assert (out == 0).all(axis=2).any(axis=1).sum() == 1  # one black row, rest white padding


def test_crop_keeps_the_centre_third():
    thirds = np.empty((100, 300, 3), dtype=np.uint8)
    thirds[:, :100], thirds[:, 100:200], thirds[:, 200:] = BLUE, RED, GREEN
    out = resize_image(thirds, 60, "crop")
    assert (out == RED).all()


def test_stretch_ignores_aspect_and_keeps_layout():
    out = resize_image(halves(RED, BLUE, 200, 50), 32, "stretch")
    assert (out[:, :15] == RED).all() and (out[:, 17:] == BLUE).all()
    assert not (out == WHITE).all(axis=2).any()


def test_enlarging_interpolates_smoothly():
    out = resize_image(halves(BLACK, WHITE, 4, 4), 16, "stretch")
    assert len(np.unique(out[0, :, 0])) > 2  # linear ramp at the edge, not a hard nearest step


def test_unknown_mode_names_the_allowed_ones():
    with pytest.raises(ValueError, match="stretch, pad, crop"):
        resize_image(np.zeros((4, 4, 3), dtype=np.uint8), 4, "squash")


def test_jpeg_draft_decodes_big_photos_at_reduced_scale(tmp_path):
    """A 4000x3000 photo for a 224 model decodes at 1/8 scale, but never below 224."""
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 120, 40)).save(path, quality=90)
    small = decode_rgb(path, min_size=224)
    assert min(small.shape[:2]) >= 224
    assert small.shape[0] * small.shape[1] <= 4000 * 3000 // 16
    assert decode_rgb(path).shape == (3000, 4000, 3)
    assert np.abs(small.astype(int) - (200, 120, 40)).max() <= 4
    assert load_image(path, Preprocessing(224)).shape == (224, 224, 3)


def quadrants(width=60, height=40):
    """HxWx3: red top-left, blue top-right, green bottom-left, white bottom-right."""
    arr = np.empty((height, width, 3), dtype=np.uint8)
    arr[: height // 2, : width // 2], arr[: height // 2, width // 2:] = RED, BLUE
    arr[height // 2:, : width // 2], arr[height // 2:, width // 2:] = GREEN, WHITE
    return arr


@pytest.mark.parametrize("region,colour,shape", [
    ({"top": 0.0, "bottom": 0.5, "left": 0.0, "right": 0.5}, RED, (20, 30)),
    ({"top": 0.0, "bottom": 0.5, "left": 0.5, "right": 1.0}, BLUE, (20, 30)),
    ({"top": 0.5, "bottom": 1.0, "left": 0.0, "right": 0.5}, GREEN, (20, 30)),
    ({"top": 0.75, "bottom": 1.0, "left": 0.6, "right": 0.9}, WHITE, (10, 18)),
])
def test_region_keeps_exactly_that_part_of_the_photo(region, colour, shape):
    out = crop_region(quadrants(), region)
    assert out.shape == (*shape, 3)
    assert (out == colour).all()


def test_whole_photo_region_and_a_sliver_that_rounds_to_nothing():
    photo = quadrants()
    assert crop_region(photo, FULL_REGION) is photo and crop_region(photo, None) is photo
    sliver = crop_region(photo, {"top": 0.99, "bottom": 1.0, "left": 0.0, "right": 0.001})
    assert sliver.shape == (1, 1, 3)  # never empty: at least one pixel row and column


def test_load_image_cuts_the_region_before_resizing(tmp_path):
    path = tmp_path / "quadrants.png"
    Image.fromarray(quadrants()).save(path)
    top_left = load_image(path, Preprocessing(16, "stretch", {"top": 0.0, "bottom": 0.5, "left": 0.0, "right": 0.5}))
    assert top_left.shape == (16, 16, 3) and (top_left == RED).all()
    whole = load_image(path, Preprocessing(16, "stretch"))
    assert len(np.unique(whole.reshape(-1, 3), axis=0)) >= 4


def test_a_region_of_a_big_jpeg_is_decoded_with_enough_pixels(tmp_path):
    """The upper quarter of a 4000x3000 photo for a 224 model: the draft scale must leave the
    quarter at least 224 pixels high, not the whole photo."""
    region = {"top": 0.0, "bottom": 0.25, "left": 0.0, "right": 1.0}
    assert decode_size(224, region) == 896 and decode_size(224, None) == 224
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 120, 40)).save(path, quality=90)
    decoded = decode_rgb(path, min_size=decode_size(224, region))
    assert crop_region(decoded, region).shape[0] >= 224
    assert decoded.shape[0] < 3000  # still a reduced-scale decode
    assert load_image(path, Preprocessing(224, region=region)).shape == (224, 224, 3)


def test_min_size_leaves_other_formats_alone(zoo):
    assert decode_rgb(zoo["bmp"], min_size=8).shape == (48, 64, 3)


@pytest.fixture(scope="module")
def neckline_photos():
    photos = sorted(NECKLINES().glob("*/*.jpg"))
    # A few from each of the first classes: deterministic, and still fast.
    by_class = {}
    for photo in photos:
        by_class.setdefault(photo.parent.name, []).append(photo)
    return [p for cls in sorted(by_class)[:3] for p in by_class[cls][:2]]


@pytest.mark.shared_data
@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_load_image_on_real_photos(neckline_photos, mode):
    for photo in neckline_photos:
        first = load_image(photo, Preprocessing(224, mode))
        assert first.shape == (224, 224, 3) and first.dtype == np.uint8
        assert first.std() > 10, f"{photo.name} came out blank"
        assert np.array_equal(first, load_image(photo, Preprocessing(224, mode))), "decoding must be deterministic"


@pytest.mark.shared_data
def test_real_portrait_photo_is_padded_at_the_sides(neckline_photos):
    photo = neckline_photos[0]
    height, width = decode_rgb(photo).shape[:2]
    assert height > width  # the catalogue shots are portrait
    out = load_image(photo, Preprocessing(224, "pad"))
    border = (224 - round(width * 224 / height)) // 2
    assert border > 0
    assert (out[:, :border] == 255).all() and (out[:, -border:] == 255).all()
