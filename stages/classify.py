"""The trained models as classifiers: uint8 images in, class probabilities out.

The evaluate stage and the prediction command both go through here, so a photo is
classified the same way in both: the image store's uint8 pixels (or a photo decoded and
resized by `stages.images`, exactly as prepare does) go to the CNN, which resizes and
rescales inside the model, or through the same frozen backbone and `preprocess_input`
as the extract stage to the head.
"""

import os
from pathlib import Path

import numpy as np

from stages.errors import PipelineError
from stages.images import DEFAULT_MAX_PIXELS, load_image

KINDS = ("cnn", "head")
MODELS_DIR = Path("models")


class Classifier:
    """One trained model with what it needs to classify: classes, input size, resize mode, region."""

    def __init__(self, kind, model, info, extractor=None):
        self.kind, self.model, self.info, self.extractor = kind, model, info, extractor
        self.classes = list(info["classes"])
        self.image_size = int(info["image_size"])
        self.resize = info["resize"]
        self.region = info.get("region")  # models saved before data.region existed saw whole photos

    def read(self, path, max_pixels=DEFAULT_MAX_PIXELS):
        """A photo as this model's training images were made: decoded, cut to the region, resized."""
        return load_image(path, self.image_size, self.resize, max_pixels, self.region)

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
        raise PipelineError(f"no trained {kind} model at {path}; run `dvc repro` first")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from stages.training import load_model_info, make_reproducible

    info = load_model_info(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # a truncated or foreign file: Keras raises several kinds
        raise PipelineError(f"could not load {path} ({type(err).__name__}: {err}); run `dvc repro` again") from None
    extractor = None
    if kind == "head" and with_backbone:
        from stages.backbones import build_extractor

        backbone = info["backbone"]
        # With random weights (weights_used none) the backbone is rebuilt from the same seed the
        # extract stage used, so it is the same random backbone.
        make_reproducible(info["seed"])
        extractor = build_extractor(backbone["model"], backbone["image_size"], weights=backbone["weights_used"],
                                    alpha=backbone["alpha"], precision=backbone["precision"],
                                    mirror=backbone.get("mirror", False))
    return Classifier(kind, model, info, extractor)
