"""BlazePose (MediaPipe's pose detector and its full landmark model): the wearer's shoulders, face points
and which way the wearer faces, with or without a face in the photo.

The two models run the way MediaPipe's pose graph runs them: the detector finds the person (a box, with
alignment keypoints: the hip centre and a point that gives the body's size and rotation); the body's
region is that centre, rotated upright, 2 x the distance between the two points wide, enlarged 1.25
times (PoseDetectionToRoi); the landmark model sees that rotated square at 256 x 256 and gives 33 body
landmarks (x, y, and each one's visibility), mapped back to the photo. The model files and their
origin: weights/mediapipe/README.md.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fashion.data import tflite

LANDMARK_MODEL = "pose_landmark_full.tflite"
LANDMARK_SIDE = 256
ROI_SCALE = 1.25
MIN_PRESENCE = 0.5   # the landmark model's own "a person is in the crop" score, below which its points are noise
# BlazePose's landmark indices (the person's left and right)
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = 0, 2, 5, 7, 8
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
FACE_POINTS = (NOSE, LEFT_EYE, RIGHT_EYE)


@dataclass(frozen=True)
class Pose:
    """One person's landmarks in a photo: points (33, 2) in photo pixels, visibility (33,) 0..1 (how likely
    each point is in view and not hidden), the detector's score and the landmark model's presence score."""
    points: np.ndarray
    visibility: np.ndarray
    score: float
    presence: float

    @property
    def shoulders(self):
        """((x, y) of the left shoulder, (x, y) of the right one), the person's left and right."""
        return tuple(self.points[LEFT_SHOULDER]), tuple(self.points[RIGHT_SHOULDER])

    @property
    def shoulder_width(self):
        return float(np.hypot(*(self.points[LEFT_SHOULDER] - self.points[RIGHT_SHOULDER])))

    @property
    def face_visibility(self):
        """The highest visibility among the nose and the eyes: low when the face is turned away or cut off."""
        return float(self.visibility[list(FACE_POINTS)].max())

    @property
    def shoulders_mirrored(self):
        """True when the person's left shoulder is on the photo's left: the wearer's back is to the camera."""
        return bool(self.points[LEFT_SHOULDER][0] < self.points[RIGHT_SHOULDER][0])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -tflite.SCORE_CLIP, tflite.SCORE_CLIP)))


def region_of_interest(keypoints):
    """(centre x, centre y, side, rotation in radians) of the landmark model's square, in photo pixels, from
    the detector's hip centre (keypoint 0) and its size-and-rotation point (keypoint 1)."""
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return float(x0), float(y0), 2 * math.hypot(x1 - x0, y1 - y0) * ROI_SCALE, rotation


def _roi_transform(roi):
    """The 2x3 affine map from the landmark model's 256 x 256 input to photo pixels."""
    cx, cy, side, rotation = roi
    cos, sin = math.cos(rotation), math.sin(rotation)
    scale = side / LANDMARK_SIDE
    # p = centre + R (u * scale - side / 2)
    return np.array([[cos * scale, -sin * scale, cx - (cos - sin) * side / 2],
                     [sin * scale, cos * scale, cy - (sin + cos) * side / 2]], dtype=np.float64)


def landmarks(rgb, roi):
    """(points (33, 2) in photo pixels, visibility (33,), presence) of the landmark model on a photo's region."""
    to_photo = _roi_transform(roi)
    crop = cv2.warpAffine(rgb, cv2.invertAffineTransform(to_photo), (LANDMARK_SIDE, LANDMARK_SIDE),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    outputs = tflite.run(LANDMARK_MODEL, (crop.astype(np.float32) / 255.0)[None])
    raw = next(out for out in outputs if out.shape == (1, 195))[0].reshape(39, 5)[:33]
    presence = float(next(out for out in outputs if out.shape == (1, 1))[0, 0])  # already a probability
    points = np.c_[raw[:, :2], np.ones(33)] @ to_photo.T
    return points, _sigmoid(raw[:, 3]), presence


def find_pose(rgb):
    """The Pose of the most confident person in an HxWx3 uint8 photo, or None when no person is found."""
    detections = tflite.detect(tflite.POSE_DETECTOR, rgb)
    if not detections:
        return None
    score, _, keypoints = detections[0]
    points, visibility, presence = landmarks(rgb, region_of_interest(keypoints))
    if presence < MIN_PRESENCE:
        return None
    return Pose(points, visibility, score, presence)
