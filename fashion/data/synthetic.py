"""The generator of the embedded default data set: photo-like garment images (stage `synthesize`).

`generate_dataset` writes <out>/<class>/<class>_0000.jpg, ...; `render_garment` draws one image.

Each image is a front view of a top (T-shirt, sweater, blouse), either worn (neck, chest and
arms showing through the openings) or shot "ghost mannequin" style (the inside of the back
showing through the neckline). Only the neckline's shape depends on the class; colours,
patterns, background, framing, lighting, folds, blur, noise and JPEG artefacts are nuisance
variation drawn independently of it, so a classifier has to look at the neckline.

Geometry lives in *garment units*: origin at the centre of the neck line (the line through
the two points where the neckline meets the shoulder seams), x towards the image's right,
y downwards, 1 unit = shoulder width. A per-image frame (scale, position, rotation, slight
aspect change) maps garment units to pixels, so one geometry serves every framing, and
fabric patterns are evaluated in garment units so they scale and rotate with the garment.

Images are painted channel-first, (3, size, size) float32 in [0, 1], because numpy blends a
(size, size) alpha mask into that layout several times faster than into (size, size, 3).
"""

import colorsys
import functools
import logging
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fashion.atomic import atomic_dir, check_writable
from fashion.errors import PipelineError
from fashion.params import PARAMS_FILE

log = logging.getLogger(__name__)


NECKLINES = ("round_neck", "scoop_neck", "v_neck", "square_neck", "boat_neck")

# Imbalanced on purpose: the training stage balances the classes (SMOTE), and a shipped
# data set that is already balanced would never exercise that code.
# 1,125 images, 791 to train on: with a third of that the custom CNN's accuracy was limited by the data
# (docs/cnn.md, "The CNN on the generated necklines"). params.yaml's synthetic.counts holds the same numbers.
DEFAULT_COUNTS = {"round_neck": 390, "v_neck": 255, "scoop_neck": 195, "square_neck": 150, "boat_neck": 135}

JPEG_QUALITY = 92
MIN_SIZE = 32  # below this a neckline is a handful of pixels and the classes stop being distinguishable


@dataclass(frozen=True)
class NecklineShape:
    """Per-image ranges of a neckline, in garment units.

    The opening is the lower half of a superellipse |x / half_width|^n + |y / depth|^n = 1:
    n ~ 1 is a V, n ~ 2 an ellipse, large n a rectangle with rounded corners.
    """

    width: tuple[float, float]  # full width of the opening at the neck line
    depth: tuple[float, float]  # from the neck line down to the lowest point of the opening
    exponent: tuple[float, float]


# Round, scoop and boat are the same family of curves and differ only in width and depth,
# with small gaps between their ranges (round/scoop ~0.06 apart in width and ~0.09 in depth;
# boat is wider than the widest scoop and shallower than the shallowest round). Square and V
# overlap the others in size and differ in shape (the exponent). Framing, aspect change,
# rotation and blur blur these gaps further, so the classes are learnable, not trivial: a
# linear probe on pretrained MobileNet features scores ~0.82 balanced accuracy.
NECKLINE_SHAPES = {
    "round_neck": NecklineShape(width=(0.28, 0.38), depth=(0.07, 0.13), exponent=(1.8, 2.4)),
    "scoop_neck": NecklineShape(width=(0.44, 0.58), depth=(0.22, 0.34), exponent=(2.0, 3.0)),
    "v_neck": NecklineShape(width=(0.26, 0.38), depth=(0.22, 0.38), exponent=(0.85, 1.2)),
    "square_neck": NecklineShape(width=(0.38, 0.52), depth=(0.16, 0.28), exponent=(8.0, 16.0)),
    "boat_neck": NecklineShape(width=(0.60, 0.76), depth=(0.025, 0.06), exponent=(3.0, 6.0)),
}

# --- Scene ranges (garment units unless noted) -------------------------------------------
WORN_PROBABILITY = 0.75  # otherwise a ghost-mannequin product shot
SHOULDER_WIDTH_OF_FRAME = (0.6, 0.95)  # shoulder width in pixels / image size
MAX_ROTATION_DEG = 10.0
ASPECT_JITTER = 0.07  # horizontal stretch, like a slight turn of the body or lens distortion
CENTRE_JITTER = 0.08  # horizontal offset of the garment, fraction of the image
NECK_VISIBLE = (0.12, 0.45)  # how much neck/background shows above the neck line
ARMPIT_Y = 0.42
SKIN_TONES = np.array(  # light to dark, RGB in [0, 1]; a tone is interpolated between neighbours
    [(255, 224, 196), (241, 194, 167), (224, 172, 138), (198, 134, 100), (141, 85, 54), (92, 58, 40)],
    dtype=np.float32,
) / 255.0
PATTERNS = ("solid", "h_stripes", "v_stripes", "checks", "dots", "print", "heather")
PATTERN_WEIGHTS = (0.40, 0.15, 0.10, 0.09, 0.09, 0.09, 0.08)
BACKGROUNDS = ("plain", "gradient", "blotchy", "grain", "two_tone")
BACKGROUND_NEAR_GARMENT = 0.2  # share of backgrounds close to the garment's own colour

# --- Rendering ---------------------------------------------------------------------------
NECK_POINTS = 41  # odd, so a V's tip (the curve's middle sample) is a vertex
SUBPIXEL_BITS = 4  # cv2 fixed-point coordinates: 1/16 pixel, smooth anti-aliased edges
SHADING_STEP = 2  # light and folds vary slowly: compute them at half resolution, then upsample
SOFT_STEP = 4  # wide blurs (cast shadows) at quarter resolution: same look, a fraction of the time
# Images are independent and every image has its own generator, so the output doesn't depend on the
# scheduling: they are rendered in worker processes, one per core. (Threads: numpy and cv2 release the GIL in
# their loops, but the Python between them held it; on 2 cores 1,125 images took 13.4 s on threads.)
RENDER_WORKERS = os.cpu_count() or 1
RENDER_CHUNK = 16  # images per task sent to a worker


# =========================================================================================
# Public API
# =========================================================================================


def generate_dataset(out_dir: Path, counts: dict[str, int], size: int, seed: int) -> dict[str, int]:
    """Write counts[c] JPEGs per class to out_dir/<class>/<class>_0000.jpg, ... and return the counts.

    Image i of a class gets its own generator, seeded by the child (class index, i) of
    SeedSequence(seed), so output is deterministic and changing one class's count leaves
    the other classes' files byte-identical. Everything is written to a temporary sibling
    directory first and renamed into place at the end, so a failure leaves no partial data
    set and an existing out_dir untouched.
    """
    counts = validated_counts(counts)
    check_size(size)
    _check_seed(seed)
    with atomic_dir(out_dir) as tmp_dir:  # .<name>.tmp-<pid> beside out_dir, renamed into place on success
        _write_images(tmp_dir, counts, size, seed)
    return counts


def render_garment(neckline: str, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """One photo-like (size, size, 3) uint8 RGB image of a top; deterministic given the rng state."""
    if neckline not in NECKLINE_SHAPES:
        raise ValueError(f"unknown neckline {neckline!r}; expected one of {', '.join(NECKLINES)}")
    check_size(size)

    frame = _sample_frame(rng, size)
    worn = bool(rng.random() < WORN_PROBABILITY)
    garment = _sample_garment(NECKLINE_SHAPES[neckline], rng, frame, worn)
    wearer = _sample_wearer(rng, garment)
    colours = _sample_colours(rng)

    masks = _draw_masks(garment, wearer, frame, worn)
    background = _paint_background(rng, size, colours)
    albedo, pattern = _fabric_albedo(rng, frame, colours)
    image = _compose(rng, background, masks, albedo, frame, pattern, wearer, colours, worn)
    return _apply_camera(rng, image)


def synthesize(params, paths):
    """The stage `synthesize`: the default data set from params' `seed` and `synthetic`, in paths.synthetic."""
    settings = params.synthetic
    try:  # params.py checks types and ranges; the class names are the generator's to check
        validated_counts(settings.counts)
        check_size(settings.image_size)
    except ValueError as err:
        raise PipelineError(f"{PARAMS_FILE}: 'synthetic': {err}") from None
    check_writable(paths.synthetic)
    written = generate_dataset(paths.synthetic, settings.counts, settings.image_size, params.seed)
    log.info("wrote %d images of %d px to %s: %s", sum(written.values()), settings.image_size, paths.synthetic,
             ", ".join(f"{name} {count}" for name, count in written.items()))
    return written


# =========================================================================================
# Validation, seeding and output
# =========================================================================================


def validated_counts(counts: dict[str, int]) -> dict[str, int]:
    """Counts in NECKLINES order; unknown classes and non-positive counts are the caller's mistake."""
    if not isinstance(counts, dict) or not counts:
        raise ValueError(f"counts must be a non-empty dict of class name -> image count, got {counts!r}")
    unknown = sorted((str(name) for name in counts if name not in NECKLINES))
    if unknown:
        raise ValueError(f"unknown class(es) {unknown} in counts; expected names from {', '.join(NECKLINES)}")
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count <= 0:
            raise ValueError(f"count for {name!r} must be a positive integer, got {count!r}")
    return {name: int(counts[name]) for name in NECKLINES if name in counts}


def check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"image size must be an integer >= {MIN_SIZE}, got {size!r}")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _image_rng(seed: int, neckline: str, index: int) -> np.random.Generator:
    # Same as SeedSequence(seed).spawn(...)[class].spawn(...)[index], without spawning all siblings.
    key = (NECKLINES.index(neckline), index)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def _write_images(directory: Path, counts: dict[str, int], size: int, seed: int, workers: int | None = None) -> None:
    """Render in worker processes (spawned, so no state of this process is copied), write in order; on any error,
    stop before the pool returns. workers=1 renders in this process."""
    jobs = [(neckline, index) for neckline, count in counts.items() for index in range(count)]
    for neckline in counts:
        (directory / neckline).mkdir(parents=True)
    workers = min(workers or RENDER_WORKERS, max(1, len(jobs) // RENDER_CHUNK))
    render = functools.partial(_render_jpeg, size=size, seed=seed)
    if workers == 1:
        _write_in_order(directory, jobs, map(render, *zip(*jobs)))
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            _write_in_order(directory, jobs, pool.map(render, *zip(*jobs), chunksize=RENDER_CHUNK))
        except BaseException:
            # Drop the renders not yet started; leaving `with` waits for the running ones,
            # so nothing is still busy when the caller cleans up.
            pool.shutdown(cancel_futures=True)
            raise


def _write_in_order(directory: Path, jobs: list[tuple[str, int]], jpegs) -> None:
    for (neckline, index), jpeg in zip(jobs, jpegs):
        (directory / neckline / f"{neckline}_{index:04d}.jpg").write_bytes(jpeg)


def _render_jpeg(neckline: str, index: int, *, size: int, seed: int) -> bytes:
    image = render_garment(neckline, _image_rng(seed, neckline, index), size)
    return _encode_jpeg(image, JPEG_QUALITY)


def _encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("cv2 could not encode a JPEG")
    return buffer.tobytes()


# =========================================================================================
# Scene sampling
# =========================================================================================


@dataclass(frozen=True)
class _Frame:
    """Maps garment units to pixels: pixel = matrix @ point + origin."""

    size: int
    origin: np.ndarray  # pixel position of the neck line's centre
    matrix: np.ndarray  # rotation @ scale

    @property
    def pixel(self) -> float:
        """Roughly one pixel in garment units, the width of an anti-aliased edge."""
        return float(1.0 / np.sqrt(abs(np.linalg.det(self.matrix))))

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        return points @ self.matrix.T + self.origin

    def to_garment(self, pixels: np.ndarray) -> np.ndarray:
        return (pixels - self.origin) @ np.linalg.inv(self.matrix).T

    def garment_grid(self, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Garment coordinates (u, v) of the pixel grid, every `step`-th pixel, float32."""
        xs, ys = _pixel_grid(self.size, step)
        inverse = np.linalg.inv(self.matrix).astype(np.float32)
        dx, dy = xs - np.float32(self.origin[0]), ys - np.float32(self.origin[1])
        return inverse[0, 0] * dx + inverse[0, 1] * dy, inverse[1, 0] * dx + inverse[1, 1] * dy

    def lowest_visible_y(self) -> float:
        """Largest garment y inside the image (at a corner, as the image is convex)."""
        corners = np.array([[0, 0], [self.size, 0], [0, self.size], [self.size, self.size]], dtype=np.float64)
        return float(self.to_garment(corners)[:, 1].max())


@functools.lru_cache(maxsize=16)
def _pixel_grid(size: int, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates; with step > 1, the centres cv2.resize assumes for a reduced image."""
    n = -(-size // step)
    centres = (np.arange(n, dtype=np.float32) + 0.5) * step - 0.5
    xs, ys = np.meshgrid(centres, centres)
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _sample_frame(rng: np.random.Generator, size: int) -> _Frame:
    shoulder_px = size * rng.uniform(*SHOULDER_WIDTH_OF_FRAME)
    aspect = 1.0 + rng.uniform(-ASPECT_JITTER, ASPECT_JITTER)
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = rotation @ np.diag([shoulder_px * aspect, shoulder_px])
    origin = np.array(
        [
            size * (0.5 + rng.uniform(-CENTRE_JITTER, CENTRE_JITTER)),
            shoulder_px * rng.uniform(*NECK_VISIBLE) + size * rng.uniform(0.0, 0.06),
        ]
    )
    return _Frame(size=size, origin=origin, matrix=matrix)


@dataclass(frozen=True)
class _Garment:
    neck_half_width: float
    neck_depth: float
    neck_exponent: float
    back_depth: float  # the inside of the back neckline, seen through the opening
    trim: float  # width of the rib/collar band along the neckline, 0 for a raw edge
    shoulder_drop: float  # how far the shoulder point sits below the neck line
    body_half_width: float  # at the armpit
    hem_flare: float
    hem: float
    sleeve_length: float
    sleeve_width: float
    sleeve_angle: float  # radians outwards from vertical


def _sample_garment(shape: NecklineShape, rng: np.random.Generator, frame: _Frame, worn: bool) -> _Garment:
    depth = rng.uniform(*shape.depth)
    sleeve_kind = rng.choice(["short", "three_quarter", "long"], p=[0.55, 0.15, 0.30])
    sleeve_length = {"short": (0.28, 0.45), "three_quarter": (0.75, 0.95), "long": (1.4, 1.9)}[sleeve_kind]
    # Short sleeves flare away from the arm; long ones hang along it.
    sleeve_angle = (10, 30) if sleeve_kind == "short" else (4, 16)
    hem = rng.uniform(1.3, 1.9)
    if worn or rng.random() < 0.7:
        # A worn top (and most product shots) runs out of the frame; a visible hem on a
        # worn top would need legs and trousers below it.
        hem = max(hem, frame.lowest_visible_y() + 0.25)
    return _Garment(
        neck_half_width=rng.uniform(*shape.width) / 2,
        neck_depth=depth,
        neck_exponent=rng.uniform(*shape.exponent),
        back_depth=depth * rng.uniform(0.1, 0.4),
        trim=0.0 if rng.random() < 0.25 else rng.uniform(0.012, 0.04),
        shoulder_drop=rng.uniform(0.07, 0.14),
        body_half_width=rng.uniform(0.41, 0.48),
        hem_flare=rng.uniform(-0.02, 0.06),
        hem=hem,
        sleeve_length=rng.uniform(*sleeve_length),
        sleeve_width=rng.uniform(0.17, 0.24),
        sleeve_angle=np.deg2rad(rng.uniform(*sleeve_angle)),
    )


@dataclass(frozen=True)
class _Wearer:
    neck_half_width: float
    trapezius: float  # how high above the neck line the neck starts to flare into the shoulders
    jaw_gap: float  # from the neck line up to the chin
    jaw_half_width: float
    skin: np.ndarray  # RGB


def _sample_wearer(rng: np.random.Generator, garment: _Garment) -> _Wearer:
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(tone)
    high = min(low + 1, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[low] + (SKIN_TONES[high] - SKIN_TONES[low]) * (tone - low)
    # A crew neck hugs the neck, so the neck can't be wider than the opening.
    neck = min(rng.uniform(0.10, 0.14), garment.neck_half_width * 0.92)
    return _Wearer(
        neck_half_width=neck,
        trapezius=rng.uniform(0.05, 0.12),
        jaw_gap=rng.uniform(0.26, 0.40),
        jaw_half_width=rng.uniform(0.16, 0.21),
        skin=np.clip(skin * rng.uniform(0.92, 1.06, 3), 0, 1).astype(np.float32),
    )


@dataclass(frozen=True)
class _Colours:
    fabric: np.ndarray
    second: np.ndarray  # stripes, checks, dots, print
    trim: np.ndarray
    background: np.ndarray


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))), dtype=np.float32)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    kind = rng.choice(["neutral", "dark", "pastel", "saturated", "muted"], p=[0.25, 0.15, 0.2, 0.2, 0.2])
    hue = rng.random()
    if kind == "neutral":  # white, grey, black, beige: the commonest garment colours
        value = rng.uniform(0.08, 0.25) if rng.random() < 0.3 else rng.uniform(0.4, 0.97)
        return _hsv(rng.uniform(0.05, 0.15), rng.uniform(0, 0.12), value)
    if kind == "dark":
        return _hsv(hue, rng.uniform(0.3, 0.8), rng.uniform(0.15, 0.4))
    if kind == "pastel":
        return _hsv(hue, rng.uniform(0.15, 0.35), rng.uniform(0.8, 0.97))
    if kind == "saturated":
        return _hsv(hue, rng.uniform(0.6, 0.95), rng.uniform(0.55, 0.95))
    return _hsv(hue, rng.uniform(0.25, 0.55), rng.uniform(0.35, 0.75))


def _sample_colours(rng: np.random.Generator) -> _Colours:
    fabric = _random_colour(rng)
    second = _random_colour(rng)
    if np.abs(second - fabric).sum() < 0.45:  # stripes in two near-identical colours are invisible
        second = np.full(3, 0.08 if fabric.mean() > 0.5 else 0.95, np.float32)
    trim = second if rng.random() < 0.2 else np.clip(fabric * rng.uniform(0.82, 1.04), 0, 1)
    if rng.random() < BACKGROUND_NEAR_GARMENT:
        background = np.clip(fabric + rng.normal(0, 0.06, 3), 0, 1)
    else:
        background = _hsv(rng.random(), rng.uniform(0, 0.35) ** 1.5, rng.uniform(0.35, 1.0))
    return _Colours(*(_planar(c) for c in (fabric, second, trim, background)))


def _planar(rgb: np.ndarray) -> np.ndarray:
    """An RGB colour shaped (3, 1, 1), to broadcast over a channel-first image."""
    return np.asarray(rgb, np.float32).reshape(3, 1, 1)


# =========================================================================================
# Geometry: polygons in garment units, filled into anti-aliased masks
# =========================================================================================


def _neckline_curve(half_width: float, depth: float, exponent: float) -> np.ndarray:
    """Points from (-half_width, 0) through (0, depth) to (half_width, 0)."""
    # sin spacing puts more points near the ends, where an ellipse turns vertical.
    t = np.sin(np.linspace(-np.pi / 2, np.pi / 2, NECK_POINTS))
    y = depth * np.clip(1 - np.abs(t) ** exponent, 0, 1) ** (1 / exponent)
    return np.stack([half_width * t, y], axis=1)


def _mirror(points: np.ndarray) -> np.ndarray:
    """The other side of a symmetric outline, in reverse order so outlines stay closed."""
    return (points * [-1, 1])[::-1]


def _torso_polygon(g: _Garment) -> np.ndarray:
    right = np.array(
        [
            (0.5, g.shoulder_drop),
            (g.body_half_width + 0.02, g.shoulder_drop + 0.2),
            (g.body_half_width, ARMPIT_Y),
            (g.body_half_width - 0.015, 0.9),
            (g.body_half_width + g.hem_flare, g.hem),
        ]
    )
    neckline = _neckline_curve(g.neck_half_width, g.neck_depth, g.neck_exponent)
    return np.concatenate([neckline, right, [(0.0, g.hem + 0.015)], _mirror(right)])


@dataclass(frozen=True)
class _Sleeve:
    """The right sleeve; the left one is its mirror image."""

    outline: np.ndarray
    outer_end: np.ndarray  # the two corners of the sleeve's opening
    inner_end: np.ndarray
    down: np.ndarray  # unit vector along the sleeve


def _sleeve(g: _Garment) -> _Sleeve:
    down = np.array([np.sin(g.sleeve_angle), np.cos(g.sleeve_angle)])
    outward = np.array([np.cos(g.sleeve_angle), -np.sin(g.sleeve_angle)])
    shoulder = np.array([0.5, g.shoulder_drop])
    armpit = np.array([g.body_half_width, ARMPIT_Y])
    outer_end = shoulder + down * g.sleeve_length + outward * 0.02
    inner_end = outer_end - outward * g.sleeve_width
    cap = shoulder + outward * 0.025 + down * 0.05  # the rounded top of the sleeve
    outline = np.array([shoulder - (0.03, 0.0), shoulder, cap, outer_end, inner_end, armpit])
    return _Sleeve(outline, outer_end, inner_end, down)


def _arm_polygon(sleeve: _Sleeve) -> np.ndarray:
    """A forearm coming out of a short sleeve: narrower than the opening, hanging more steeply."""
    centre = (sleeve.outer_end + sleeve.inner_end) / 2
    across = sleeve.outer_end - sleeve.inner_end
    down = sleeve.down * [0.5, 1.0]
    down /= np.linalg.norm(down)
    top_half, wrist_half = across * 0.36, across * 0.26
    beyond_frame = down * 3  # the arm runs out of the picture
    return np.array([centre - top_half, centre + top_half, centre + wrist_half + beyond_frame,
                     centre - wrist_half + beyond_frame])


def _skin_body_polygon(g: _Garment, w: _Wearer) -> np.ndarray:
    """Neck flaring into shoulders, kept under the garment wherever the garment covers it."""
    x = np.linspace(w.neck_half_width, 0.5, 28)
    flare = (x - w.neck_half_width) / (0.5 - w.neck_half_width)
    y = -w.trapezius * (1 - np.sqrt(flare)) + g.shoulder_drop * flare  # sqrt: joins the neck vertically
    shoulder_line = g.shoulder_drop * (x - g.neck_half_width) / (0.5 - g.neck_half_width)
    y = np.where(x > g.neck_half_width, np.maximum(y, shoulder_line + 0.01), y)
    side = g.body_half_width - 0.02  # inside the torso, so no skin shows between sleeve and body
    right = np.array([(w.neck_half_width, -3.0), *zip(x, y), (side, ARMPIT_Y), (side, 3.0)])
    return np.concatenate([_mirror(right), right])


def _ellipse(centre: tuple[float, float], half_axes: tuple[float, float], num: int = 48) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, num, endpoint=False)
    return np.stack([centre[0] + half_axes[0] * np.cos(angle), centre[1] + half_axes[1] * np.sin(angle)], axis=1)


def _fixed_point(frame: _Frame, points: np.ndarray) -> np.ndarray:
    return np.round(frame.to_pixels(points) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _fill(frame: _Frame, *polygons: np.ndarray) -> np.ndarray:
    """Anti-aliased union of polygons (garment units) as a float32 alpha mask."""
    mask = np.zeros((frame.size, frame.size), np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [_fixed_point(frame, polygon)], 255, cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return mask.astype(np.float32) / 255.0


def _stroke(frame: _Frame, *polylines: np.ndarray) -> np.ndarray:
    """Anti-aliased thin lines (seams, stitching) as a float32 mask."""
    mask = np.zeros((frame.size, frame.size), np.uint8)
    points = [_fixed_point(frame, line) for line in polylines]
    cv2.polylines(mask, points, False, 255, 1, cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return mask.astype(np.float32) / 255.0


@dataclass(frozen=True)
class _Masks:
    torso: np.ndarray
    sleeves: np.ndarray
    trim: np.ndarray  # on the torso, along the neckline
    inside: np.ndarray  # inside of the back, seen through the neckline
    inside_band: np.ndarray  # the back collar band, part of `inside`
    skin_body: np.ndarray  # neck, chin, chest (worn only)
    arms: np.ndarray  # forearms below short sleeves (worn only)
    seams: np.ndarray


def _draw_masks(g: _Garment, w: _Wearer, frame: _Frame, worn: bool) -> _Masks:
    torso = _fill(frame, _torso_polygon(g))
    sleeve = _sleeve(g)
    sleeves = _fill(frame, sleeve.outline, _mirror(sleeve.outline))

    # Trim: the band between the opening and a slightly larger copy of it.
    hw, depth, n = g.neck_half_width, g.neck_depth, g.neck_exponent
    trim_edge = _neckline_curve(hw + g.trim, depth + g.trim, n)
    trim = np.zeros_like(torso)
    if g.trim > 0:
        trim = _fill(frame, np.concatenate([trim_edge, [(hw + g.trim, -1.0), (-hw - g.trim, -1.0)]])) * torso

    front = _neckline_curve(hw, depth, n)
    back = _neckline_curve(hw, g.back_depth, 2.0)
    inside = _fill(frame, np.concatenate([back, front[::-1]]))
    band = _neckline_curve(hw, g.back_depth + max(g.trim, 0.015), 2.0)
    inside_band = _fill(frame, np.concatenate([back, band[::-1]])) * inside

    skin_body = arms = np.zeros_like(torso)
    short_sleeves = g.sleeve_length < 1.2  # long sleeves cover the arms to beyond the frame
    if worn:
        chin = _ellipse((0.0, -w.jaw_gap - 0.3), (w.jaw_half_width, 0.3))
        skin_body = _fill(frame, _skin_body_polygon(g, w), chin)
        if short_sleeves:
            arm = _arm_polygon(sleeve)
            arms = _fill(frame, arm, _mirror(arm))

    shoulder, armpit = sleeve.outline[1], sleeve.outline[-1]
    armhole = np.array([shoulder, shoulder + (0.015, 0.12), shoulder + (0.005, 0.24), armpit])
    seam_lines = [armhole, _mirror(armhole)]
    if g.trim > 0:
        seam_lines.append(trim_edge)
    if short_sleeves:
        hem_line = np.array([sleeve.outer_end, sleeve.inner_end]) - sleeve.down * 0.03
        seam_lines += [hem_line, _mirror(hem_line)]
    seams = _stroke(frame, *seam_lines)
    return _Masks(torso, sleeves, trim, inside, inside_band, skin_body, arms, seams)


# =========================================================================================
# Painting (channel-first float32 images)
# =========================================================================================


def _upsample(field: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur of a mask, done at reduced resolution."""
    size = mask.shape[0]
    small = cv2.resize(mask, (-(-size // SOFT_STEP),) * 2, interpolation=cv2.INTER_AREA)
    return _upsample(cv2.GaussianBlur(small, (0, 0), max(sigma / SOFT_STEP, 0.5)), size)


def _paint_background(rng: np.random.Generator, size: int, colours: _Colours) -> np.ndarray:
    base = colours.background
    style = rng.choice(BACKGROUNDS)
    xs, ys = _pixel_grid(size, SHADING_STEP)  # smooth light: half resolution is plenty
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
        xs, ys = _pixel_grid(size)
        offset = rng.uniform(-0.35, 0.35) * size
        distance = math.cos(angle) * (xs - size / 2) + math.sin(angle) * (ys - size / 2) - offset
        blend = 0.5 + 0.5 * np.tanh(distance / (rng.uniform(0.5, 6) * size / 256))
        other = np.clip(base * rng.uniform(0.6, 1.3) + _planar(rng.normal(0, 0.05, 3)), 0, 1)
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


def _fabric_albedo(rng: np.random.Generator, frame: _Frame, colours: _Colours) -> tuple[np.ndarray, str]:
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


def _fabric_light(rng: np.random.Generator, frame: _Frame, pattern: str) -> np.ndarray:
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


def _skin_light(rng: np.random.Generator, frame: _Frame, w: _Wearer) -> np.ndarray:
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


def _compose(rng: np.random.Generator, image: np.ndarray, masks: _Masks, albedo: np.ndarray, frame: _Frame,
             pattern: str, w: _Wearer, colours: _Colours, worn: bool) -> np.ndarray:
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
        skin = _planar(w.skin)
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
        buffer = np.frombuffer(_encode_jpeg(image, int(rng.integers(30, 75))), np.uint8)
        image = cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return image

