"""Where a backbone's pretrained weights come from, and what a weights file is for.

`features.weights` is auto, imagenet, none or a file. This module finds the file (`weights_file`), Keras's
cached ImageNet file (`keras_cache_file`) and the repository's own (`bundled_weights`), says whether Keras
could download one (`can_download`), and reads a weights file's width and backbone (`weights_alpha`,
`file_width`, `check_weights_file`). `fashion/features/frozen_backbone.py` builds the backbones with them; the
feature cache fingerprints the file.
"""

import logging
import os
import re
import socket
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from fashion.errors import PipelineError

log = logging.getLogger(__name__)

# The repository's root: weights files named relative to it are found from any working directory.
REPO_ROOT = Path(__file__).resolve().parents[2]

# Pretrained weights the repository carries (weights/, each with its licence and origin beside it), by
# (backbone, alpha): what `features.weights: auto` loads when Keras has no ImageNet file cached, before any
# download is tried, so that the default pipeline learns on a machine without internet.
BUNDLED_WEIGHTS = {("mobilenet", 0.25): "weights/mobilenet_0.25_224_no_top.h5"}
# Where keras.applications downloads its ImageNet weights from.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
# The widths keras.applications builds with ImageNet weights, per backbone that takes one.
ALPHAS = {"mobilenet": (0.25, 0.5, 0.75, 1.0), "mobilenet_v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)}


def imagenet_file_name(name, alpha, image_size):
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


def bundled_weights(name, alpha):
    """The repository's weights file for this backbone and width, as a path relative to the repository
    root (the form recorded in artifacts), or None when it carries none."""
    relative = BUNDLED_WEIGHTS.get((name, float(alpha)))
    return relative if relative is not None and (REPO_ROOT / relative).is_file() else None


def weights_file(value):
    """The file a features.weights path names: as given (relative to the working directory), or, for a
    relative path not found there, relative to the repository root. None when neither exists."""
    path = Path(value)
    if path.is_file():
        return path
    if not path.is_absolute() and (REPO_ROOT / path).is_file():
        return REPO_ROOT / path
    return None


def keras_cache_file(name, alpha, image_size):
    """Where Keras keeps a downloaded ImageNet weights file: its cache folder ($KERAS_HOME or ~/.keras, as
    Keras read it when it was imported; /tmp/.keras where that is not writable, as keras.utils.get_file does)."""
    from keras.src.backend.config import keras_home

    home = Path(keras_home()).expanduser()
    if not os.access(home, os.W_OK):
        home = Path(tempfile.gettempdir()) / ".keras"
    return home / "models" / imagenet_file_name(name, alpha, image_size)


def can_download(timeout=3.0):
    """Whether Keras's download host (or the HTTPS proxy that reaches it) answers a TCP connection: checked
    before a download is tried, so a machine without network says so instead of failing inside Keras."""
    proxy = urllib.request.getproxies().get("https")
    if proxy:
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        address = (parsed.hostname, parsed.port or 80)
    else:
        address = DOWNLOAD_HOST
    try:
        socket.create_connection(address, timeout=timeout).close()
        return True
    except OSError:
        return False


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
