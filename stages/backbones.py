"""The pretrained backbones, frozen, each with its own input preprocessing.

`FeatureExtractor` is the only way the project turns images into backbone features, in
the extract stage and in the prediction command alike, so each backbone's
`preprocess_input` is applied exactly once, to raw 0..255 pixels, and the backbone
always runs with training=False (its batch-norm statistics stay the ImageNet ones).
"""

import logging
import os
from pathlib import Path

import numpy as np

from stages.errors import PipelineError
from stages.params import BACKBONES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("backbones")

# keras.applications' backbones take no input smaller than 32x32; smaller images (Fashion-MNIST's
# 28x28) are enlarged to this size, bilinearly, on their way into the backbone.
MIN_INPUT = 32


def _registry():
    import keras

    apps = keras.applications
    return {
        # name: (constructor, its preprocess_input, whether it takes a width multiplier alpha)
        "mobilenet": (apps.MobileNet, apps.mobilenet.preprocess_input, True),
        "mobilenet_v2": (apps.MobileNetV2, apps.mobilenet_v2.preprocess_input, True),
        "vgg16": (apps.VGG16, apps.vgg16.preprocess_input, False),
        "resnet50": (apps.ResNet50, apps.resnet50.preprocess_input, False),
    }


def _weights_argument(name, weights):
    """params' features.weights -> the `weights=` argument of keras.applications."""
    if weights == "none":
        return None
    if weights == "imagenet":
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise PipelineError(
            f"features.weights: file {weights} not found. Use a path to a {name} weights file "
            "(include_top=False), 'imagenet' (downloaded by Keras), or 'none' (random weights)")
    return str(path)


class FeatureExtractor:
    """A frozen backbone with global average pooling: uint8 images in, one vector per image out."""

    def __init__(self, name, image_size, weights="imagenet", alpha=1.0, precision="float32"):
        if name not in BACKBONES:
            raise PipelineError(f"unknown model {name!r}; valid models: {', '.join(BACKBONES)}")
        import keras

        constructor, self.preprocess_input, takes_alpha = _registry()[name]
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
                return constructor(include_top=False, weights=_weights_argument(name, weights),
                                   input_shape=(self.input_size, self.input_size, 3), pooling="avg", **kwargs)
            except PipelineError:
                raise
            except Exception as err:  # Keras raises plain Exception/ValueError/OSError for both cases below
                raise PipelineError(_weights_failure(name, weights, alpha, image_size, err)) from None

        try:
            self.weights_used = "imagenet" if weights == "auto" else weights
            try:
                self.model = build(self.weights_used)
            except PipelineError as err:
                if weights != "auto":
                    raise
                # The default must run on a fresh offline machine: fall back, loudly, and record it.
                log.warning("features.weights=auto: no ImageNet weights (%s). USING RANDOM WEIGHTS: the head "
                            "will be near chance. Set features.weights to a weights file for real results.", err)
                self.weights_used = "none"
                self.model = build("none")
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


def build_extractor(model, image_size, weights="imagenet", alpha=1.0, precision="float32", mirror=False):
    """The extractor for params' `model`: one backbone, or an Ensemble for names joined by '+'.

    `weights` is one value for every backbone or a mapping of backbone name to its value;
    `mirror` averages each image's features with its mirror image's.
    """
    names = model.split("+")
    extractors = [FeatureExtractor(name, image_size, weights=weights[name] if isinstance(weights, dict) else weights,
                                   alpha=alpha, precision=precision) for name in names]
    extractor = extractors[0] if len(extractors) == 1 else Ensemble(extractors)
    return MirrorAveraged(extractor) if mirror else extractor


def _weights_failure(name, weights, alpha, image_size, err):
    if weights == "imagenet":
        cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / \
            _imagenet_file_name(name, alpha, image_size)
        return (f"could not get the ImageNet weights for {name} ({type(err).__name__}: {err}). Keras downloads "
                f"them on first use, which needs internet access. Offline, either put the file at {cached}, "
                f"or set features.weights to a local weights file (dvc exp run -S features.weights=path/to/file.h5), "
                f"or to none for random weights (useful only for tests)")
    return (f"could not load features.weights={weights} into {name} (include_top=False, input "
            f"{image_size}x{image_size}{f', alpha {alpha:g}' if name.startswith('mobilenet') else ''}): "
            f"{type(err).__name__}: {err}. Is it a weights file for this backbone and width?")


def _imagenet_file_name(name, alpha, image_size):
    """The file Keras looks for in its cache (~/.keras/models) before downloading."""
    if name == "vgg16":
        return "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if name == "resnet50":
        return "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    size = image_size if image_size in (96, 128, 160, 192, 224) else 224
    if name == "mobilenet":
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}.get(alpha, "1_0")
        return f"mobilenet_{alpha_text}_{size}_tf_no_top.h5"
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{size}_no_top.h5"
