"""The pretrained backbones as frozen feature extractors, each with its own input preprocessing.

`build_extractor` (from a `recipes.BackboneRecipe`) is the only way the project turns images into
backbone features, in the extract stage and in the prediction command alike, so each backbone's
`preprocess_input` is applied exactly once, to raw 0..255 pixels, and the backbone
always runs with training=False (its batch-norm statistics stay the ImageNet ones).
"""

import dataclasses
import logging
import re

import numpy as np

from fashion.errors import PipelineError
from fashion.features.backbones import (
    BUNDLED_WEIGHTS,
    application,
    bundled_weights,
    can_download,
    keras_cache_file,
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


def resolve_auto(name, alpha, image_size):
    """What `features.weights: auto` loads for one backbone: ImageNet when Keras has the file cached; else
    the repository's own file for this backbone and width; else ImageNet when it can be downloaded; else
    none (random weights). No download is tried on a machine that cannot reach Keras's download host."""
    if keras_cache_file(name, alpha, image_size).is_file():
        return "imagenet"
    bundled = bundled_weights(name, alpha)
    if bundled is not None:
        return bundled
    return "imagenet" if can_download() else "none"


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


def no_weights_message(name, alpha, image_size):
    """Why `features.weights: auto` found nothing for a backbone, and the three ways out."""
    width = "" if alpha is None else f" at features.alpha {alpha:g}"
    bundled = [f"{model} at features.alpha {model_alpha:g}" for (model, model_alpha) in BUNDLED_WEIGHTS]
    return (f"no ImageNet weights for {name}{width} on this machine: Keras has none cached "
            f"({keras_cache_file(name, alpha or 1.0, image_size)}), the repository carries none for it (it carries "
            f"{', '.join(bundled)}), and Keras's download host cannot be reached. Either give a weights file "
            f"(dvc exp run -S features.weights=path/to/{name}_no_top.weights.h5), or run on a machine with "
            f"internet once (features.weights: imagenet or auto downloads them), or set -S features.weights=none "
            f"to train on random weights on purpose (near-chance results, flagged as such)")


def weights_alpha(path, name):
    """The width (features.alpha) a MobileNet or MobileNetV2 weights file is for, read from its first
    convolution's filter count (32 x alpha, MobileNetV2 rounded to a multiple of 8), or None when that does
    not tell one width: the file is not for this backbone, or its count fits two widths (MobileNetV2's 0.35
    and 0.5)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            shapes, _ = _weights_layout(handle)
    except OSError:
        return None  # not a weights file: check_weights_file says so when the backbone is built
    first = [shape[3] for shape in shapes if len(shape) == 4 and shape[:3] == (3, 3, 3)]
    if len(first) != 1:
        return None
    fits = [alpha for alpha in ALPHAS[name] if first_filters(name, alpha) == first[0]]
    return fits[0] if len(fits) == 1 else None


# The widths keras.applications builds with ImageNet weights, per backbone that takes one.
ALPHAS = {"mobilenet": (0.25, 0.5, 0.75, 1.0), "mobilenet_v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)}


def first_filters(name, alpha):
    """The filter count of a width's first convolution, as keras.applications builds it."""
    if name == "mobilenet":
        return int(32 * alpha)
    rounded = max(8, int(32 * alpha + 4) // 8 * 8)  # MobileNetV2's _make_divisible(32 * alpha, 8)
    return rounded + 8 if rounded < 0.9 * 32 * alpha else rounded


def file_width(recipe):
    """features.alpha as the weights files in a recipe say it: the recipe's own alpha unless every file for a
    backbone with a width names one other width (a MobileNet 1.0 file with features.alpha 0.25 left at its
    default). None of the files telling: the recipe's alpha."""
    weights = recipe.weights
    found = set()
    for name in recipe.model.split("+"):
        value = weights.get(name) if isinstance(weights, dict) else weights
        path = weights_file(value) if name in ALPHAS and value not in (None, "auto", "imagenet", "none") else None
        if path is not None:
            found.add(weights_alpha(path, name))
    if len(found) != 1 or None in found or float(recipe.alpha) in found:
        return recipe.alpha
    (alpha,) = found
    log.info("features.alpha follows the weights file: %s, not %s (the file is for %s at width %s)",
             alpha, recipe.alpha, recipe.model, alpha)
    return alpha


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


def check_weights_file(path, name, alpha, model):
    """Raise PipelineError unless the weights file at `path` holds exactly the arrays `model` (backbone
    `name`, width `alpha` or None) has, by shape; the error names the file, the backbone asked for and,
    where the file's layer names tell, the backbone the file seems to be for."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            shapes, names = _weights_layout(handle)
    except OSError as err:
        raise PipelineError(f"features.weights: {path} is not a Keras weights file (.h5 or .weights.h5): {err}. "
                            f"Use a {name} weights file (include_top=False), imagenet or none") from None
    if shapes == sorted(tuple(weight.shape) for weight in model.weights):
        return
    asked = name if alpha is None else f"{name} with alpha {alpha:g}"
    seems = _backbone_of(names)
    if seems is None:
        hint = "its layer names do not tell which backbone it is for"
    elif seems == name:
        hint = f"it seems to be for {name} at another width (features.alpha) or from another version"
    else:
        hint = f"it seems to be for {seems}"
    raise PipelineError(
        f"features.weights: {path} does not fit the backbone asked for, {asked} (model: {name}): the file holds "
        f"{len(shapes)} weight arrays, the backbone {len(model.weights)}, not of the same shapes; {hint}. Set model "
        f"to the backbone the file is for, or features.weights to a {name} file (include_top=False)")


def _weights_layout(handle):
    """(sorted shapes of every weight array, layer names) of an open Keras weights file: the Keras 3 format
    (layers/<name>/vars/<i>) or the older one (a group per layer, named in the `layer_names` attribute)."""
    import h5py

    if "layers" in handle:
        root, names = handle["layers"], list(handle["layers"].keys())
    else:
        root = handle["model_weights"] if "model_weights" in handle else handle
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs.get("layer_names", [])]
    shapes = []
    root.visititems(lambda _, item: shapes.append(tuple(item.shape)) if isinstance(item, h5py.Dataset) else None)
    return sorted(shapes), names


def _backbone_of(names):
    """The backbone a weights file's layer names point to, or None. Files saved by keras.applications name
    layers after the architecture (conv_dw_1, block_1_expand, block1_conv1, conv2_block1_1_conv); Keras 3's
    .weights.h5 names them by type only, and the types still tell the four apart."""
    for prefix, backbone in (("conv_dw_", "mobilenet"), ("block_1_expand", "mobilenet_v2"),
                             ("expanded_conv", "mobilenet_v2"), ("block1_conv", "vgg16"), ("conv2_block1", "resnet50")):
        if any(name.startswith(prefix) for name in names):
            return backbone
    kinds = {re.sub(r"_\d+$", "", name) for name in names}
    if "depthwise_conv2d" in kinds:  # MobileNetV2 adds its residuals, MobileNet has none
        return "mobilenet_v2" if "add" in kinds else "mobilenet"
    if "add" in kinds:
        return "resnet50"
    if "conv2d" in kinds and "batch_normalization" not in kinds:
        return "vgg16"
    return None


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
