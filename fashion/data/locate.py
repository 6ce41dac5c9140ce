"""The neckline locator: where in a photo the neckline is, before any model sees it.

Most neckline photos are full-body or three-quarter shots, where the collar is a few percent of the
picture. With `data.locate: face`, a face detector (MTCNN, the `mtcnn` package: three small
TensorFlow networks whose weights ship inside its wheel) finds the wearer's face, and the box the
models see is anchored under it, in face units (`data.locate_box`):

    top    = face top + locate_box.top    x face height
    bottom = face top + locate_box.bottom x face height
    left   = face centre - locate_box.half_width x face width     (right: + the same)

The box is clipped to the photo. A photo with no usable face (a back view, a close-up of the collar,
a flat-lay) keeps `data.region` and is marked `located: false`, in the manifest and in every
prediction, so a user can treat those answers with care.

Several faces in one photo: the largest one is taken. Product photos show one wearer, in front;
a smaller face is a print on the garment, a mirror or a person in the background.

Detection runs on a copy of the photo whose longer side is at most DETECT_SIDE pixels (the
detector's cost grows with the pixels; a face in a product photo is far larger than its minimum of
20 px there); the box is then applied to the photo as decoded. `fashion.data.images.preprocess` calls
`locate` for prepare, predict and serve alike, so a photo gets exactly the same crop in all three.
"""

import threading
from dataclasses import dataclass

import cv2
import numpy as np

DETECT_SIDE = 640
MIN_CONFIDENCE = 0.9   # MTCNN's last network scores faces 0..1; below this, lookalikes in prints and folds
MIN_BOX_PIXELS = 8     # a clipped box thinner than this (a face at the bottom edge) is no neckline box


@dataclass(frozen=True)
class Location:
    """The part of a photo a model sees, as fractions of its height and width, and whether a face
    anchored it (False: the photo's data.region, because no usable face was found; None: data.locate
    is none, nothing was looked for)."""
    top: float
    bottom: float
    left: float
    right: float
    located: bool | None

    @property
    def region(self):
        return {"top": self.top, "bottom": self.bottom, "left": self.left, "right": self.right}

    def to_record(self):
        """The box as the manifest and the prediction records write it (4 decimals: 0.1 px at 1000 px)."""
        return {"located": self.located, "box": {k: round(v, 4) for k, v in self.region.items()}}


_detector = None
_detector_lock = threading.Lock()


def _detect(rgb):
    """MTCNN's faces in an HxWx3 uint8 photo: a list of (x, y, width, height, confidence) in its pixels."""
    global _detector
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = rgb if scale == 1.0 else cv2.resize(
        rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    with _detector_lock:  # one detector per process, built on first use; its TensorFlow calls are not re-entrant
        if _detector is None:
            from mtcnn import MTCNN

            _detector = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
        faces = _detector.detect_faces(np.ascontiguousarray(small), box_format="xywh") if min(small.shape[:2]) >= 12 else []
    return [(x / scale, y / scale, w / scale, h / scale, float(face["confidence"]))
            for face in faces for x, y, w, h in [face["box"]]]


def choose_face(faces):
    """The face to anchor on: the largest confident one (product photos show one wearer, in front), or None."""
    confident = [face for face in faces if face[4] >= MIN_CONFIDENCE and face[2] > 0 and face[3] > 0]
    return max(confident, key=lambda face: (face[2] * face[3], -face[1]), default=None)


def box_under_face(face, box, height, width):
    """The neckline box (face units in `box`) under a face (x, y, w, h), clipped to a height x width photo,
    as (top, bottom, left, right) pixels; None when too little of it is left inside the photo."""
    x, y, w, h = face[:4]
    centre = x + w / 2
    top, bottom = y + box["top"] * h, y + box["bottom"] * h
    left, right = centre - box["half_width"] * w, centre + box["half_width"] * w
    top, bottom = max(0.0, top), min(float(height), bottom)
    left, right = max(0.0, left), min(float(width), right)
    if bottom - top < MIN_BOX_PIXELS or right - left < MIN_BOX_PIXELS:
        return None
    return top, bottom, left, right


def locate(rgb, preprocessing):
    """The Location of the neckline in a decoded photo (a recipes.Preprocessing says how to find it)."""
    if preprocessing.locate == "none":
        return Location(**preprocessing.region, located=None)
    fallback = Location(**preprocessing.region, located=False)
    height, width = rgb.shape[:2]
    face = choose_face(_detect(rgb))
    pixels = box_under_face(face, preprocessing.locate_box, height, width) if face else None
    if pixels is None:
        return fallback
    top, bottom, left, right = pixels
    return Location(top / height, bottom / height, left / width, right / width, located=True)
