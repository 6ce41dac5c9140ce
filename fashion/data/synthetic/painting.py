"""One image painted: background, fabric, light, the masks back to front, then the camera.

`render_garment` draws one image from a sampled scene. Images are painted channel-first, (3, size, size)
float32 in [0, 1], because numpy blends a (size, size) alpha mask into that layout several times faster
than into (size, size, 3).
"""

import math

import cv2
import numpy as np

from fashion.data.synthetic.masks import Masks, draw_masks
from fashion.data.synthetic.scenes import (
    BACKGROUNDS,
    NECKLINE_SHAPES,
    NECKLINES,
    PATTERN_WEIGHTS,
    PATTERNS,
    WORN_PROBABILITY,
    Colours,
    Frame,
    Wearer,
    pixel_grid,
    planar,
    sample_colours,
    sample_frame,
    sample_garment,
    sample_wearer,
)

SHADING_STEP = 2  # light and folds vary slowly: compute them at half resolution, then upsample
SOFT_STEP = 4  # wide blurs (cast shadows) at quarter resolution: same look, a fraction of the time


def render_garment(neckline: str, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """One photo-like (size, size, 3) uint8 RGB image of a top; deterministic given the rng state."""
    if neckline not in NECKLINE_SHAPES:
        raise ValueError(f"unknown neckline {neckline!r}; expected one of {', '.join(NECKLINES)}")

    frame = sample_frame(rng, size)
    worn = bool(rng.random() < WORN_PROBABILITY)
    garment = sample_garment(NECKLINE_SHAPES[neckline], rng, frame, worn)
    wearer = sample_wearer(rng, garment)
    colours = sample_colours(rng)

    masks = draw_masks(garment, wearer, frame, worn)
    background = _paint_background(rng, size, colours)
    albedo, pattern = _fabric_albedo(rng, frame, colours)
    image = _compose(rng, background, masks, albedo, frame, pattern, wearer, colours, worn)
    return _apply_camera(rng, image)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("cv2 could not encode a JPEG")
    return buffer.tobytes()


# --- the background and the fabric --------------------------------------------------------


def _upsample(field: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur of a mask, done at reduced resolution."""
    size = mask.shape[0]
    small = cv2.resize(mask, (-(-size // SOFT_STEP),) * 2, interpolation=cv2.INTER_AREA)
    return _upsample(cv2.GaussianBlur(small, (0, 0), max(sigma / SOFT_STEP, 0.5)), size)


def _paint_background(rng: np.random.Generator, size: int, colours: Colours) -> np.ndarray:
    base = colours.background
    style = rng.choice(BACKGROUNDS)
    xs, ys = pixel_grid(size, SHADING_STEP)  # smooth light: half resolution is plenty
    light = np.ones_like(xs)
    if style == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        light += rng.uniform(0.2, 0.6) * ((math.cos(angle) * xs + math.sin(angle) * ys) / size - 0.5)
    elif style == "blotchy":  # a painted wall or backdrop with uneven light
        cells = int(rng.integers(3, 8))
        noise = rng.standard_normal((cells, cells)).astype(np.float32)
        light += rng.uniform(0.05, 0.15) * cv2.resize(noise, xs.shape[::-1], interpolation=cv2.INTER_CUBIC)
    # Studio light falls off towards the corners.
    light *= 1 - rng.uniform(0, 0.25) * (((xs - size / 2) ** 2 + (ys - size / 2) ** 2) / (size / 2) ** 2)
    light = _upsample(light, size)
    if style == "grain":  # fabric or paper backdrop
        strength = rng.uniform(0.1, 0.3)
        grain = cv2.GaussianBlur(_noise(rng, (size, size)), (0, 0), rng.uniform(0.6, 1.5) * size / 256)
        light *= 1 + strength * grain
    image = base * light

    if style == "two_tone":  # a wall edge, door frame or second backdrop
        angle = rng.uniform(0, 2 * np.pi)
        xs, ys = pixel_grid(size)
        offset = rng.uniform(-0.35, 0.35) * size
        distance = math.cos(angle) * (xs - size / 2) + math.sin(angle) * (ys - size / 2) - offset
        blend = 0.5 + 0.5 * np.tanh(distance / (rng.uniform(0.5, 6) * size / 256))
        other = np.clip(base * rng.uniform(0.6, 1.3) + planar(rng.normal(0, 0.05, 3)), 0, 1)
        image += (other - base) * (blend * light)
    return image


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform zero-mean noise in [-1, 1] from random bytes: for grain it looks the same as
    Gaussian noise and costs a fraction of rng.standard_normal."""
    return rng.integers(0, 256, shape, dtype=np.uint8).astype(np.float32) * np.float32(2 / 255) - 1


def _bands(t: np.ndarray, duty: float, edge: float) -> np.ndarray:
    """1 inside a periodic band of the given duty cycle, 0 outside, with an edge `edge` periods wide."""
    distance = np.abs(t - np.floor(t) - 0.5)
    return np.clip((duty / 2 - distance) / max(edge, 1e-3) + 0.5, 0, 1)


def _tiled(rng: np.random.Generator, tile: np.ndarray, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Sample a repeating texture tile at garment coordinates, so it follows the garment."""
    n = tile.shape[0]
    phase = rng.random(2) * n
    map_x = ((u * (n / period) + phase[0]) % n).astype(np.float32)
    map_y = ((v * (n / period) + phase[1]) % n).astype(np.float32)
    return cv2.remap(tile, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _fabric_albedo(rng: np.random.Generator, frame: Frame, colours: Colours) -> tuple[np.ndarray, str]:
    """The fabric's own colour at every pixel (pattern included, light excluded), and the pattern's name."""
    pattern = rng.choice(PATTERNS, p=PATTERN_WEIGHTS)
    size = frame.size
    if pattern in ("solid", "heather"):  # heather's streaks are a texture, added with the light
        return np.broadcast_to(colours.fabric, (3, size, size)).copy(), pattern

    u, v = frame.garment_grid()
    pixel = frame.pixel
    # Cloth is never flat: a gentle wave bends the pattern.
    wave = rng.uniform(0.0, 0.008)
    shift_u = wave * np.sin(v * rng.uniform(8, 20) + rng.uniform(0, 6.3))
    shift_v = wave * np.sin(u * rng.uniform(8, 20) + rng.uniform(0, 6.3))
    u, v = u + shift_u, v + shift_v
    if pattern == "h_stripes":
        period = rng.uniform(0.035, 0.16)
        amount = _bands(v / period + rng.random(), rng.uniform(0.2, 0.6), pixel / period)
    elif pattern == "v_stripes":
        period = rng.uniform(0.03, 0.14)
        amount = _bands(u / period + rng.random(), rng.uniform(0.15, 0.5), pixel / period)
    elif pattern == "checks":
        period = rng.uniform(0.05, 0.16)
        duty = rng.uniform(0.1, 0.55)
        across = _bands(u / period + rng.random(), duty, pixel / period)
        down = _bands(v / period + rng.random(), duty, pixel / period)
        amount = 0.5 * (across + down) if rng.random() < 0.6 else np.maximum(across, down)  # gingham or windowpane
    elif pattern == "dots":
        spacing = rng.uniform(0.04, 0.12)
        row = np.floor(v / spacing)
        du = (u / spacing + 0.5 * (row % 2)) % 1.0 - 0.5
        dv = (v / spacing) % 1.0 - 0.5
        radius = rng.uniform(0.12, 0.32) * spacing
        amount = np.clip((radius - np.hypot(du, dv) * spacing) / pixel + 0.5, 0, 1)
    else:  # "print": small scattered motifs
        cells = int(rng.integers(6, 12))
        blobs = cv2.resize(rng.random((cells, cells)).astype(np.float32), (64, 64), interpolation=cv2.INTER_CUBIC)
        amount = _tiled(rng, np.clip((blobs - 0.62) * 8, 0, 1), u, v, rng.uniform(0.08, 0.2))
    return colours.fabric + (colours.second - colours.fabric) * amount, pattern


def _fabric_light(rng: np.random.Generator, frame: Frame, pattern: str) -> np.ndarray:
    """Light on the fabric (size, size): rounded torso, a directional light, folds and knit texture."""
    u, v = frame.garment_grid(SHADING_STEP)  # light varies slowly: half resolution is plenty
    shade = 1 - rng.uniform(0.05, 0.3) * np.clip(u / 0.55, -1.15, 1.15) ** 2
    light = rng.uniform(0, 2 * np.pi)
    shade *= 1 + rng.uniform(0.0, 0.3) * (math.cos(light) * u + math.sin(light) * v)
    for _ in range(int(rng.integers(2, 7))):
        # Each fold is a ridge: lit on one side, in shadow on the other, fading along its length.
        u0, v0 = rng.uniform(-0.45, 0.45), rng.uniform(0.15, 1.2)
        angle = rng.uniform(-1.2, 1.2)
        width, length = rng.uniform(0.015, 0.05), rng.uniform(0.15, 0.6)
        across = ((u - u0) * math.cos(angle) - (v - v0) * math.sin(angle)) / width
        along = ((u - u0) * math.sin(angle) + (v - v0) * math.cos(angle)) / length
        shade += rng.uniform(-0.14, 0.14) * across * np.exp(0.5 - 0.5 * across**2 - along**2)
    shade = _upsample(shade, frame.size)

    # Knitted fabric has a fine texture of its own; heather (melange) yarn a streaky one.
    shade *= 1 + rng.uniform(0.02, 0.06) * _noise(rng, shade.shape)
    if pattern == "heather":
        u, v = frame.garment_grid()
        streaks = cv2.resize(rng.standard_normal((64, 16)).astype(np.float32), (64, 64), interpolation=cv2.INTER_LINEAR)
        shade *= 1 + rng.uniform(0.08, 0.2) * _tiled(rng, streaks, u, v, rng.uniform(0.12, 0.3))
    return shade


def _skin_light(rng: np.random.Generator, frame: Frame, w: Wearer) -> np.ndarray:
    """Light on the skin (size, size): a round neck in the chin's shadow, a rounded chest, collarbones."""
    u, v = frame.garment_grid(SHADING_STEP)
    radius = np.where(v < -w.trapezius * 0.5, np.float32(w.neck_half_width), np.float32(0.5))
    shade = 1 - rng.uniform(0.15, 0.35) * np.clip((u / radius) ** 2, 0, 1.3)
    below_jaw = np.maximum(v + w.jaw_gap, 0)
    shade *= 1 - rng.uniform(0.2, 0.45) * np.clip(below_jaw / 0.01, 0, 1) * np.exp(-below_jaw / 0.07)
    # Collarbones: a faint shadow line from the base of the neck outwards.
    collarbone = v - (0.045 + 0.08 * (np.abs(u) - 0.05))
    window = np.clip((np.abs(u) - 0.04) / 0.03, 0, 1) * np.clip((0.32 - np.abs(u)) / 0.05, 0, 1)
    shade *= 1 - 0.07 * np.exp(-((collarbone / 0.02) ** 2)) * window
    # Arms are cylinders too: darker towards their outer edge.
    shade *= 1 - 0.2 * np.clip((np.abs(u) - 0.45) / 0.25, 0, 1)
    return _upsample(shade, frame.size)


def _paint_over(image: np.ndarray, layer: np.ndarray, alpha: np.ndarray, light: np.ndarray | float = 1.0) -> None:
    """Composite layer * light over image, in place, touching only alpha's bounding box.

    layer is a channel-first image or a (3, 1, 1) colour; light a (size, size) field or a
    number. Most layers (neck, trim, inside of the back, arms) cover a small part of the frame,
    and painting only their box keeps rendering fast.
    """
    x, y, width, height = cv2.boundingRect((alpha > 0).view(np.uint8))
    if width == 0:
        return
    rows, cols = slice(y, y + height), slice(x, x + width)
    target = image[:, rows, cols]
    if layer.shape[1] > 1:
        layer = layer[:, rows, cols]
    if not np.isscalar(light):
        light = light[rows, cols]
    change = layer * light - target  # in-place steps from here: allocation is most of the cost
    change *= alpha[rows, cols]
    target += change


def _compose(rng: np.random.Generator, image: np.ndarray, masks: Masks, albedo: np.ndarray, frame: Frame,
             pattern: str, w: Wearer, colours: Colours, worn: bool) -> np.ndarray:
    """Back to front: background, cast shadow, inside of the back, skin, torso, arms, sleeves."""
    size = frame.size
    silhouette = np.maximum(np.maximum(masks.torso, masks.sleeves), np.maximum(masks.skin_body, masks.arms))
    shift = np.float32([[1, 0, rng.uniform(-0.04, 0.04) * size], [0, 1, rng.uniform(0.0, 0.05) * size]])
    shadow = cv2.warpAffine(_soft(silhouette, rng.uniform(0.02, 0.07) * size), shift, (size, size))
    image *= 1 - rng.uniform(0.1, 0.4) * shadow

    # The rib trim is knitted separately: its own colour, under the same light as the rest.
    _paint_over(albedo, colours.trim, masks.trim)
    light = _fabric_light(rng, frame, pattern)
    light *= 1 - rng.uniform(0.15, 0.35) * masks.seams
    garment = albedo * light

    inside_light = rng.uniform(0.3, 0.55)  # the inside of the back is in the front's shadow
    _paint_over(image, garment, masks.inside, inside_light)
    _paint_over(image, colours.trim * inside_light * rng.uniform(0.8, 1.0), masks.inside_band, light)

    if worn:
        # The garment's edge shades the skin right next to it (ambient occlusion).
        skin_light = _skin_light(rng, frame, w)
        skin_light *= 1 - rng.uniform(0.15, 0.35) * _soft(masks.torso, 0.02 / frame.pixel)
        skin = planar(w.skin)
        _paint_over(image, skin, masks.skin_body, skin_light)

    _paint_over(image, garment, masks.torso)
    if worn:
        _paint_over(image, skin, masks.arms, skin_light)
    _paint_over(image, garment, masks.sleeves, rng.uniform(0.85, 1.0))  # sleeves turn from the light a little
    return image


def _apply_camera(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Focus, sensor noise, exposure, white balance and sometimes heavy JPEG compression.

    Takes the channel-first float image, returns (size, size, 3) uint8 RGB.
    """
    size = image.shape[1]
    image = cv2.merge(list(image))
    if rng.random() < 0.75:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.4) * size / 256)
    image += rng.uniform(0.005, 0.05) * _noise(rng, image.shape)  # sensor noise
    image = cv2.convertScaleAbs(image, alpha=255.0)  # rounds and saturates to 0..255

    # Contrast, brightness, white balance and gamma as one lookup table per channel.
    levels = np.linspace(0, 1, 256)[:, None]
    levels = (levels - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)
    levels = np.clip(levels * (1 + rng.normal(0, 0.03, 3)), 0, 1) ** rng.uniform(0.8, 1.25)
    image = cv2.LUT(image, (levels * 255 + 0.5).astype(np.uint8).reshape(1, 256, 3))

    if rng.random() < 0.3:
        buffer = np.frombuffer(encode_jpeg(image, int(rng.integers(30, 75))), np.uint8)
        image = cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return image
