"""The trained models as classifiers: uint8 images in, class probabilities out.

The evaluate stage and the prediction command both go through here, so a photo is
classified the same way in both: the image store's uint8 pixels (or a photo decoded and
preprocessed by `stages.images`, exactly as prepare does) go to the CNN, which resizes and
rescales inside the model, or through the same frozen backbone and `preprocess_input`
as the extract stage to the head. A model is rebuilt from `models/<kind>.keras` and the two
recipes in `models/<kind>.json` alone (`stages.recipes`).
"""

import json
from pathlib import Path

import numpy as np

from stages import runtime  # noqa: F401  (TensorFlow's environment, before Keras loads it)
from stages.errors import PipelineError, missing, outdated
from stages.images import DEFAULT_MAX_PIXELS, load_image
from stages.recipes import BackboneRecipe, Preprocessing
from stages.training import load_model_info

KINDS = ("cnn", "head")
MODELS_DIR = Path("models")
TEST_METRICS = Path("metrics/test.json")  # written by the evaluate stage: one section per kind


class Classifier:
    """One trained model with what it needs to classify: its classes and how its inputs are made."""

    def __init__(self, kind, model, info, preprocessing, extractor=None):
        self.kind, self.model, self.info, self.extractor = kind, model, info, extractor
        self.classes = list(info["classes"])
        self.preprocessing = preprocessing
        self.image_size = preprocessing.image_size

    @property
    def title(self):
        """How reports name the model: the custom CNN, or the head with its backbone."""
        return f"{self.info[BackboneRecipe.RECORD_KEY]['model']} head" if self.kind == "head" else "custom CNN"

    def read(self, path, max_pixels=DEFAULT_MAX_PIXELS):
        """A photo as this model's training images were made: decoded, cut to the region, resized."""
        return load_image(path, self.preprocessing, max_pixels)

    def probabilities(self, images):
        """(n, classes) float32 probabilities for a batch of (n, size, size, 3) uint8 images."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(f"expected (n, {self.image_size}, {self.image_size}, 3) images, got {images.shape}")
        if self.kind == "head":
            return self.from_features(self.extractor(images))
        # predict_on_batch runs the model with training=False: augmentation stays off.
        return np.asarray(self.model.predict_on_batch(images.astype(np.float32)), dtype=np.float32)

    def from_features(self, features):
        """Head only: probabilities from backbone features the extract stage already computed."""
        if self.kind != "head":
            raise ValueError("only the head takes backbone features")
        return np.asarray(self.model.predict_on_batch(np.asarray(features, dtype=np.float32)), dtype=np.float32)


def model_path(kind, models_dir=MODELS_DIR):
    return Path(models_dir) / f"{kind}.keras"


def load_classifier(kind, models_dir=MODELS_DIR, with_backbone=True):
    """Load models/<kind>.keras and its .json; for the head, rebuild the backbone that made its features.

    with_backbone=False skips the backbone (the evaluate stage feeds the head cached features).
    """
    if kind not in KINDS:
        raise PipelineError(f"unknown model kind {kind!r}; choose one of: {', '.join(KINDS)}")
    path = model_path(kind, models_dir)
    info_path = path.with_suffix(".json")
    if not path.is_file() or not info_path.is_file():
        raise missing(path, f"no trained {kind} model")
    import keras

    info = load_model_info(path)
    preprocessing = Preprocessing.from_artifact(info, info_path)
    recipe = BackboneRecipe.from_artifact(info, info_path) if kind == "head" else None
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # a truncated or foreign file: Keras raises several kinds
        raise outdated(path, f"could not be loaded ({type(err).__name__}: {err})") from None
    extractor = None
    if recipe is not None and with_backbone:
        from stages.extractor import build_extractor

        extractor = build_extractor(recipe, preprocessing.image_size)
    return Classifier(kind, model, info, preprocessing, extractor)


def best_model(metrics_path=TEST_METRICS):
    """The kind with the higher balanced accuracy (then macro-F1) in the last evaluation, or None."""
    path = Path(metrics_path)
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
        return max(KINDS, key=lambda kind: (results[kind]["balanced_accuracy"], results[kind]["macro_f1"]))
    except (ValueError, KeyError, TypeError):
        return None
