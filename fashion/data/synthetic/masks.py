"""The garment's and the wearer's outlines: polygons in garment units, filled into anti-aliased masks."""

from dataclasses import dataclass

import cv2
import numpy as np

from fashion.data.synthetic.scenes import Frame, Garment, Wearer

ARMPIT_Y = 0.42  # garment units below the neck line
NECK_POINTS = 41  # odd, so a V's tip (the curve's middle sample) is a vertex
SUBPIXEL_BITS = 4  # cv2 fixed-point coordinates: 1/16 pixel, smooth anti-aliased edges


def _neckline_curve(half_width: float, depth: float, exponent: float) -> np.ndarray:
    """Points from (-half_width, 0) through (0, depth) to (half_width, 0)."""
    # sin spacing puts more points near the ends, where an ellipse turns vertical.
    t = np.sin(np.linspace(-np.pi / 2, np.pi / 2, NECK_POINTS))
    y = depth * np.clip(1 - np.abs(t) ** exponent, 0, 1) ** (1 / exponent)
    return np.stack([half_width * t, y], axis=1)


def _mirror(points: np.ndarray) -> np.ndarray:
    """The other side of a symmetric outline, in reverse order so outlines stay closed."""
    return (points * [-1, 1])[::-1]


def _torso_polygon(g: Garment) -> np.ndarray:
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


def _sleeve(g: Garment) -> _Sleeve:
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


def _skin_body_polygon(g: Garment, w: Wearer) -> np.ndarray:
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


def _fixed_point(frame: Frame, points: np.ndarray) -> np.ndarray:
    return np.round(frame.to_pixels(points) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _fill(frame: Frame, *polygons: np.ndarray) -> np.ndarray:
    """Anti-aliased union of polygons (garment units) as a float32 alpha mask."""
    mask = np.zeros((frame.size, frame.size), np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [_fixed_point(frame, polygon)], 255, cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return mask.astype(np.float32) / 255.0


def _stroke(frame: Frame, *polylines: np.ndarray) -> np.ndarray:
    """Anti-aliased thin lines (seams, stitching) as a float32 mask."""
    mask = np.zeros((frame.size, frame.size), np.uint8)
    points = [_fixed_point(frame, line) for line in polylines]
    cv2.polylines(mask, points, False, 255, 1, cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return mask.astype(np.float32) / 255.0


@dataclass(frozen=True)
class Masks:
    torso: np.ndarray
    sleeves: np.ndarray
    trim: np.ndarray  # on the torso, along the neckline
    inside: np.ndarray  # inside of the back, seen through the neckline
    inside_band: np.ndarray  # the back collar band, part of `inside`
    skin_body: np.ndarray  # neck, chin, chest (worn only)
    arms: np.ndarray  # forearms below short sleeves (worn only)
    seams: np.ndarray


def draw_masks(g: Garment, w: Wearer, frame: Frame, worn: bool) -> Masks:
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
    return Masks(torso, sleeves, trim, inside, inside_band, skin_body, arms, seams)
