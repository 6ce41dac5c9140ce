"""The pretrained backbones as frozen feature extractors, each with its own input preprocessing.

`build_extractor` (from a `recipes.BackboneRecipe`) is the only way the project turns images into
backbone features, in the extract stage and in the prediction command alike, so each backbone's
`preprocess_input` is applied exactly once, to raw 0..255 pixels, and the backbone
always runs with training=False (its batch-norm statistics stay the ImageNet ones).
"""

import dataclasses
import logging

import numpy as np

from fashion.errors import PipelineError
from fashion.features.backbones import application
from fashion.features.weights import (
    can_download,
    check_weights_file,
    file_width,
    keras_cache_file,
    no_weights_message,
    resolve_auto,
    weights_file,
)
from fashion.runtime import make_reproducible

log = logging.getLogger(__name__)

# keras.applications' backbones take no input smaller than 32x32; smaller images (Fashion-MNIST's
# 28x28) are enlarged to this size, bilinearly, on their way into the backbone.
MIN_INPUT = 32


def _weights_argument(name, weights):
    """params' features.weights -> the `weights=` argument of keras.applications."""
    if weights == "none":
        return None
    if weights == "imagenet":
        return "imagenet"
    path = weights_file(weights)
    if path is None:
        raise PipelineError(
            f"features.weights: file {weights} not found. Use a path to a {name} weights file "
            "(include_top=False), 'imagenet' (downloaded by Keras), or 'none' (random weights)")
    return str(path)


def is_random(weights):
    """True when a recorded weights value (one, or a mapping per backbone) has random weights anywhere."""
    if isinstance(weights, dict):
        return any(is_random(value) for value in weights.values())
    return weights in (None, "none")


RANDOM_WEIGHTS_ADVICE = ("its predictions are near chance. Give the backbone pretrained weights: features.weights "
                         "auto (ImageNet, or the repository's file for mobilenet with features.alpha 0.25), or a "
                         "weights file (see docs/pipeline.md, Weights), then `dvc repro`")


class FeatureExtractor:
    """A frozen backbone with global average pooling: uint8 images in, one vector per image out."""

    def __init__(self, name, image_size, weights="imagenet", alpha=1.0, precision="float32"):
        import keras

        constructor, self.preprocess_input, takes_alpha = application(name)
        if precision == "bfloat16":
            # Weights are kept in float32 and cast; the convolutions run in bfloat16 (AMX on this CPU).
            keras.config.set_dtype_policy("mixed_bfloat16")
        kwargs = {"alpha": alpha} if takes_alpha else {}
        self.input_size = max(image_size, MIN_INPUT)
        if self.input_size != image_size:
            log.info("%dx%d images are enlarged to %dx%d for %s (its smallest input)",
                     image_size, image_size, self.input_size, self.input_size, name)

        def build(weights):
            try:
                argument = _weights_argument(name, weights)
                if argument in (None, "imagenet"):
                    return constructor(include_top=False, weights=argument,
                                       input_shape=(self.input_size, self.input_size, 3), pooling="avg", **kwargs)
                # A file: built empty and checked against the file before Keras loads it, as keras.applications
                # would (model.load_weights), because Keras answers a wrong file with pages of warnings and arrays.
                model = constructor(include_top=False, weights=None,
                                    input_shape=(self.input_size, self.input_size, 3), pooling="avg", **kwargs)
                check_weights_file(argument, name, alpha if takes_alpha else None, model)
                model.load_weights(argument)
                return model
            except PipelineError:
                raise
            except Exception as err:  # Keras raises plain Exception/ValueError/OSError for both cases below
                raise PipelineError(_weights_failure(name, weights, alpha, image_size, err)) from None

        try:
            self.weights_used = resolve_auto(name, alpha, image_size) if weights == "auto" else weights
            # No pretrained weights to be had: stop, rather than train on random ones by accident (none, asked
            # for by name, is the only way to random weights).
            if self.weights_used == "none" and weights == "auto":
                raise PipelineError(no_weights_message(name, alpha if takes_alpha else None, image_size))
            if weights == "imagenet" and not keras_cache_file(name, alpha, image_size).is_file() and not can_download():
                raise PipelineError(_weights_failure(name, weights, alpha, image_size,
                                                     OSError("no connection to Keras's download host")))
            self.model = build(self.weights_used)
            if weights == "auto":
                log.info("features.weights=auto: %s uses %s", name, _describe(self.weights_used))
            elif weights == "none":  # asked for by name; the stages and commands after it warn of it
                log.info("features.weights=none: %s has RANDOM weights, as asked; its features are near chance", name)
        finally:
            keras.config.set_dtype_policy("float32")
        self.model.trainable = False
        self.name, self.image_size, self.precision = name, image_size, precision
        self.dim = int(self.model.output_shape[-1])

    def __call__(self, images):
        """Features for a batch of (n, size, size, 3) uint8 (or 0..255 float) images, as float32."""
        x = np.asarray(images, dtype=np.float32)
        if x.shape[1] != self.input_size:
            import tensorflow as tf

            x = tf.image.resize(x, (self.input_size, self.input_size), method="bilinear").numpy()
        x = self.preprocess_input(x)
        return np.asarray(self.model.predict_on_batch(x), dtype=np.float32)


class Ensemble:
    """Several frozen backbones side by side: each one's features, concatenated in the order named."""

    def __init__(self, extractors):
        self.extractors = extractors
        self.weights_used = {e.name: e.weights_used for e in extractors}
        self.dim = sum(e.dim for e in extractors)

    def __call__(self, images):
        return np.concatenate([extractor(images) for extractor in self.extractors], axis=1)


class MirrorAveraged:
    """An extractor whose features of each image are averaged with those of its mirror image
    (flipped left to right): features that do not depend on which way the garment faces."""

    def __init__(self, extractor):
        self.extractor = extractor
        self.weights_used, self.dim = extractor.weights_used, extractor.dim

    def __call__(self, images):
        images = np.asarray(images)
        both = self.extractor(np.concatenate([images, images[:, :, ::-1]]))
        return (both[:len(images)] + both[len(images):]) / 2


def build_extractor(recipe, image_size):
    """The extractor a `BackboneRecipe` describes, for image_size x image_size images.

    One backbone, or an Ensemble for names joined by '+'; `recipe.weights` is one value for every
    backbone or a mapping of backbone name to its value ('auto' is resolved here); with
    `recipe.mirror`, each image's features are averaged with its mirror image's. Seeded from the
    recipe first, so random weights are the same every time. The result's `recipe` is the one to
    record: the weights actually used in place of 'auto'.
    """
    make_reproducible(recipe.seed)
    recipe = dataclasses.replace(recipe, alpha=file_width(recipe))
    weights = recipe.weights
    extractors = [FeatureExtractor(name, image_size, weights=weights[name] if isinstance(weights, dict) else weights,
                                   alpha=recipe.alpha, precision=recipe.precision)
                  for name in recipe.model.split("+")]
    extractor = extractors[0] if len(extractors) == 1 else Ensemble(extractors)
    if recipe.mirror:
        extractor = MirrorAveraged(extractor)
    extractor.recipe = dataclasses.replace(recipe, weights=extractor.weights_used)
    return extractor


def _describe(weights):
    if weights == "imagenet":
        return "ImageNet weights (Keras)"
    if weights == "none":
        return "RANDOM weights"
    return f"the weights file {weights}"


def _weights_failure(name, weights, alpha, image_size, err):
    if weights == "imagenet":
        cached = keras_cache_file(name, alpha, image_size)
        return (f"could not get the ImageNet weights for {name} ({type(err).__name__}: {err}). Keras downloads "
                f"them on first use, which needs internet access. Offline, either put the file at {cached}, "
                f"or set features.weights to a local weights file (dvc exp run -S features.weights=path/to/file.h5), "
                f"or to none for random weights (useful only for tests)")
    return (f"could not load features.weights={weights} into {name} (include_top=False, input "
            f"{image_size}x{image_size}{f', alpha {alpha:g}' if name.startswith('mobilenet') else ''}): "
            f"{type(err).__name__}: {_first_line(err)}. Is it a weights file for this backbone and width?")


def _first_line(err, limit=300):
    """The start of an error's text: Keras puts whole weight arrays in some of its messages."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text if len(text) <= limit else text[:limit] + "..."
