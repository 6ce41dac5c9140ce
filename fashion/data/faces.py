"""Face detectors for the neckline locator: MTCNN (the `mtcnn` package) and BlazeFace (MediaPipe's short-
and full-range models, run by fashion.data.tflite). Each gives faces as (x, y, width, height, confidence)
in the photo's pixels.

MTCNN runs on a copy of the photo whose longer side is at most DETECT_SIDE pixels (its cost grows with
the pixels; a face in a product photo is far larger than its minimum of 20 px there). BlazeFace sees the
whole photo letterboxed to its input (128 or 192 px), as MediaPipe's face detection graph does.

The two detectors draw different boxes around the same face: BlazeFace's is square, wider and shorter,
and starts lower (at the brows, MTCNN's at the forehead). `data.locate_box` was chosen by
cross-validation on MTCNN's boxes, so BlazeFace's are given in MTCNN's units (AS_MTCNN: the medians over
the neckline photos where both found the face, benchmarks/locate_report.py), and one box setting means the
same crop with either detector.
"""

import threading

import cv2
import numpy as np

from fashion.data import tflite

DETECT_SIDE = 640
# The lowest confidence that counts as a face, per detector. MTCNN's last network scores faces 0..1; below
# 0.9, lookalikes in prints and folds. BlazeFace: MediaPipe's own thresholds for each model.
MIN_CONFIDENCE = {"mtcnn": 0.9, "blazeface_short": tflite.FACE_SHORT_RANGE.min_score,
                  "blazeface_full": tflite.FACE_FULL_RANGE.min_score}
DETECTORS = tuple(MIN_CONFIDENCE)
BLAZEFACE = {"blazeface_short": tflite.FACE_SHORT_RANGE, "blazeface_full": tflite.FACE_FULL_RANGE}
# MTCNN's box from BlazeFace's, in BlazeFace's box widths and heights: width and height ratios, and where the
# top lies (negative: above). The centre stays.
AS_MTCNN = {"blazeface_short": {"width": 0.79, "height": 1.10, "top": -0.14},
            "blazeface_full": {"width": 0.81, "height": 1.12, "top": -0.14}}

_mtcnn = None
_mtcnn_lock = threading.Lock()


def detect_faces(rgb, detector):
    """`detector`'s faces in an HxWx3 uint8 photo: a list of (x, y, width, height, confidence) in its pixels."""
    if detector == "mtcnn":
        return _mtcnn_faces(rgb)
    return [(*as_mtcnn(box, AS_MTCNN[detector]), score) for score, box, _ in tflite.detect(BLAZEFACE[detector], rgb)]


def as_mtcnn(box, ratios):
    """A BlazeFace box (x, y, w, h) as MTCNN would draw it around the same face."""
    x, y, w, h = box
    width, height = ratios["width"] * w, ratios["height"] * h
    return x + (w - width) / 2, y + ratios["top"] * h, width, height


def detector_version(detector):
    """What identifies a detector's results (the decode cache's fingerprint holds it): the package's version,
    or the model file's sha256."""
    if detector == "mtcnn":
        from importlib.metadata import version

        return f"mtcnn {version('mtcnn')}"
    model = BLAZEFACE[detector]
    return f"{model.file} {model.digest()}"


def _mtcnn_faces(rgb):
    global _mtcnn
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = rgb if scale == 1.0 else cv2.resize(
        rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    with _mtcnn_lock:  # one detector per process, built on first use; its TensorFlow calls are not re-entrant
        if _mtcnn is None:
            from mtcnn import MTCNN

            _mtcnn = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
        found = _mtcnn.detect_faces(np.ascontiguousarray(small), box_format="xywh") if min(small.shape[:2]) >= 12 else []
    return [(x / scale, y / scale, w / scale, h / scale, float(face["confidence"]))
            for face in found for x, y, w, h in [face["box"]]]
