"""What is drawn at random for one image: the frame, the garment, the wearer and the colours.

The classes differ only in the neckline's shape (NECKLINE_SHAPES); everything else here is nuisance
variation drawn independently of the class. Geometry is in garment units (fashion/data/synthetic/__init__.py).
"""

import colorsys
import functools
from dataclasses import dataclass

import numpy as np

NECKLINES = ("round_neck", "scoop_neck", "v_neck", "square_neck", "boat_neck")


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
SKIN_TONES = np.array(  # light to dark, RGB in [0, 1]; a tone is interpolated between neighbours
    [(255, 224, 196), (241, 194, 167), (224, 172, 138), (198, 134, 100), (141, 85, 54), (92, 58, 40)],
    dtype=np.float32,
) / 255.0
PATTERNS = ("solid", "h_stripes", "v_stripes", "checks", "dots", "print", "heather")
PATTERN_WEIGHTS = (0.40, 0.15, 0.10, 0.09, 0.09, 0.09, 0.08)
BACKGROUNDS = ("plain", "gradient", "blotchy", "grain", "two_tone")
BACKGROUND_NEAR_GARMENT = 0.2  # share of backgrounds close to the garment's own colour


@dataclass(frozen=True)
class Frame:
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
        xs, ys = pixel_grid(self.size, step)
        inverse = np.linalg.inv(self.matrix).astype(np.float32)
        dx, dy = xs - np.float32(self.origin[0]), ys - np.float32(self.origin[1])
        return inverse[0, 0] * dx + inverse[0, 1] * dy, inverse[1, 0] * dx + inverse[1, 1] * dy

    def lowest_visible_y(self) -> float:
        """Largest garment y inside the image (at a corner, as the image is convex)."""
        corners = np.array([[0, 0], [self.size, 0], [0, self.size], [self.size, self.size]], dtype=np.float64)
        return float(self.to_garment(corners)[:, 1].max())


@functools.lru_cache(maxsize=16)
def pixel_grid(size: int, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates; with step > 1, the centres cv2.resize assumes for a reduced image."""
    n = -(-size // step)
    centres = (np.arange(n, dtype=np.float32) + 0.5) * step - 0.5
    xs, ys = np.meshgrid(centres, centres)
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def sample_frame(rng: np.random.Generator, size: int) -> Frame:
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
    return Frame(size=size, origin=origin, matrix=matrix)


@dataclass(frozen=True)
class Garment:
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


def sample_garment(shape: NecklineShape, rng: np.random.Generator, frame: Frame, worn: bool) -> Garment:
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
    return Garment(
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
class Wearer:
    neck_half_width: float
    trapezius: float  # how high above the neck line the neck starts to flare into the shoulders
    jaw_gap: float  # from the neck line up to the chin
    jaw_half_width: float
    skin: np.ndarray  # RGB


def sample_wearer(rng: np.random.Generator, garment: Garment) -> Wearer:
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(tone)
    high = min(low + 1, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[low] + (SKIN_TONES[high] - SKIN_TONES[low]) * (tone - low)
    # A crew neck hugs the neck, so the neck can't be wider than the opening.
    neck = min(rng.uniform(0.10, 0.14), garment.neck_half_width * 0.92)
    return Wearer(
        neck_half_width=neck,
        trapezius=rng.uniform(0.05, 0.12),
        jaw_gap=rng.uniform(0.26, 0.40),
        jaw_half_width=rng.uniform(0.16, 0.21),
        skin=np.clip(skin * rng.uniform(0.92, 1.06, 3), 0, 1).astype(np.float32),
    )


@dataclass(frozen=True)
class Colours:
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


def sample_colours(rng: np.random.Generator) -> Colours:
    fabric = _random_colour(rng)
    second = _random_colour(rng)
    if np.abs(second - fabric).sum() < 0.45:  # stripes in two near-identical colours are invisible
        second = np.full(3, 0.08 if fabric.mean() > 0.5 else 0.95, np.float32)
    trim = second if rng.random() < 0.2 else np.clip(fabric * rng.uniform(0.82, 1.04), 0, 1)
    if rng.random() < BACKGROUND_NEAR_GARMENT:
        background = np.clip(fabric + rng.normal(0, 0.06, 3), 0, 1)
    else:
        background = _hsv(rng.random(), rng.uniform(0, 0.35) ** 1.5, rng.uniform(0.35, 1.0))
    return Colours(*(planar(c) for c in (fabric, second, trim, background)))


def planar(rgb: np.ndarray) -> np.ndarray:
    """An RGB colour shaped (3, 1, 1), to broadcast over a channel-first image."""
    return np.asarray(rgb, np.float32).reshape(3, 1, 1)
