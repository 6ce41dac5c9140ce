"""MediaPipe's TFLite detectors run the way their graphs run them: letterboxed input, SSD anchors,
decoded boxes and keypoints, weighted non-maximum suppression.

The model files are MediaPipe's own (`weights/mediapipe/`, from the `mediapipe` 0.10.21 wheel; its
README gives their origin and sha256). The `mediapipe` package itself is not installed: it pins
numpy<2 and protobuf<5, which TensorFlow 2.21 cannot share. TensorFlow's own TFLite interpreter runs
them; the anchor and decoding settings below are those of the wheel's graphs
(`pose_detection_cpu.pbtxt`, `face_detection_*_range.pbtxt`).
"""

import hashlib
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODELS_DIR = Path(__file__).resolve().parents[2] / "weights" / "mediapipe"
SCORE_CLIP = 100.0  # the graphs clip raw scores to +-100 before the sigmoid

_interpreters = {}
_lock = threading.Lock()  # one interpreter per model and process; a TFLite interpreter is not re-entrant


@dataclass(frozen=True)
class SsdModel:
    """One MediaPipe SSD detector: its file, square input side, feature-map strides (one entry per
    layer; layers with the same stride share a grid), whether each layer has the extra interpolated
    anchor, how many keypoints a detection carries, and the lowest score it keeps."""
    file: str
    side: int
    strides: tuple
    interpolated: bool
    keypoints: int
    min_score: float
    nms_overlap: float = 0.3

    def digest(self):
        return digest(self.file)


POSE_DETECTOR = SsdModel("pose_detection.tflite", 224, (8, 16, 32, 32, 32), True, 4, 0.5)
FACE_SHORT_RANGE = SsdModel("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True, 6, 0.5)
FACE_FULL_RANGE = SsdModel("face_detection_full_range_sparse.tflite", 192, (4,), False, 6, 0.6)


def digest(name):
    """A carried model file's sha256 (the decode cache's fingerprint holds it)."""
    return hashlib.sha256(model_file(name).read_bytes()).hexdigest()


def model_file(name):
    """The path of a carried model file; a clear error when the repository's copy is missing."""
    path = MODELS_DIR / name
    if not path.is_file():
        from fashion.errors import PipelineError

        raise PipelineError(f"{path} is missing: the neckline locator needs MediaPipe's model files in "
                            f"{MODELS_DIR} (see its README.md); restore them with `git checkout -- {MODELS_DIR}`")
    return path


def run(name, tensor):
    """The model `name`'s outputs for one (1, side, side, 3) float32 input, in the order of its output details."""
    with _lock:
        interpreter = _interpreters.get(name)
        if interpreter is None:
            import tensorflow as tf

            from fashion.runtime import stderr_discarded

            path = str(model_file(name))
            # TF 2.21 still ships the interpreter, with a deprecation warning; XNNPACK announces itself on stderr
            with warnings.catch_warnings(), stderr_discarded():
                warnings.simplefilter("ignore")
                interpreter = tf.lite.Interpreter(model_path=path, num_threads=1)
                interpreter.allocate_tensors()
            _interpreters[name] = interpreter
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def letterbox(rgb, side, low=-1.0, high=1.0):
    """(tensor, square side in photo pixels, offsets): the photo centred on a black square, resized to
    side x side and scaled to low..high, as the graphs' ImageToTensor (keep_aspect_ratio, zero border)."""
    height, width = rgb.shape[:2]
    square = max(height, width)
    top, left = (square - height) // 2, (square - width) // 2
    canvas = np.zeros((square, square, 3), dtype=np.uint8)
    canvas[top:top + height, left:left + width] = rgb
    resized = cv2.resize(canvas, (side, side), interpolation=cv2.INTER_AREA if square > side else cv2.INTER_LINEAR)
    tensor = resized.astype(np.float32) * ((high - low) / 255.0) + low
    return tensor[None], square, (left, top)


def anchors(model):
    """(n, 2) anchor centres (x, y) in 0..1, in the order the model's outputs use (SsdAnchorsCalculator
    with fixed_anchor_size: every anchor is 1 x 1, so only the centres matter)."""
    centres = []
    strides = list(model.strides)
    layer = 0
    while layer < len(strides):
        same = 1
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        per_cell = same * (2 if model.interpolated else 1)
        cells = -(-model.side // strides[layer])
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        layer += same
    return np.concatenate(centres)


def detect(model, rgb):
    """The model's detections in an HxWx3 uint8 photo, best first: a list of (score, box (x, y, w, h) in photo
    pixels, keypoints (k, 2) in photo pixels)."""
    tensor, square, (left, top) = letterbox(rgb, model.side)
    outputs = run(model.file, tensor)
    raw, scores = sorted(outputs, key=lambda out: out.shape[-1], reverse=True)
    raw, scores = raw[0], scores[0, :, 0]
    centres = anchors(model)
    if len(centres) != len(raw):
        raise RuntimeError(f"{model.file}: {len(raw)} boxes but {len(centres)} anchors; the model file changed")
    scores = 1.0 / (1.0 + np.exp(-np.clip(scores.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= model.min_score
    if not keep.any():
        return []
    raw, scores, centres = raw[keep] / model.side, scores[keep], centres[keep]
    # reverse_output_order: each box is x centre, y centre, width, height, then the keypoints' x, y
    points = raw[:, 4:4 + 2 * model.keypoints].reshape(-1, model.keypoints, 2) + centres[:, None, :]
    boxes = np.concatenate([raw[:, :2] + centres - raw[:, 2:4] / 2, raw[:, 2:4]], axis=1)
    found = []
    for score, box, keypoints in weighted_nms(scores, boxes, points, model.nms_overlap):
        box = box * square - np.array([left, top, 0, 0])
        found.append((float(score), tuple(map(float, box)), keypoints * square - np.array([left, top])))
    return found


def weighted_nms(scores, boxes, points, overlap):
    """MediaPipe's WEIGHTED non-maximum suppression: each kept detection is the score-weighted mean of the
    boxes (x, y, w, h) and keypoints that overlap it by more than `overlap` (intersection over union)."""
    order = list(np.argsort(-scores))
    kept = []
    while order:
        best = order[0]
        ious = iou(boxes[best], boxes[order])
        group = [i for i, value in zip(order, ious) if value > overlap]
        weights = scores[group][:, None]
        kept.append((scores[best], (boxes[group] * weights).sum(0) / weights.sum(),
                     (points[group] * weights[:, :, None]).sum(0) / weights.sum()))
        order = [i for i, value in zip(order, ious) if value <= overlap]
    return kept


def iou(box, boxes):
    """Intersection over union of one (x, y, w, h) box with each of (n, 4) boxes."""
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
