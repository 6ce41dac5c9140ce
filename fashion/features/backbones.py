"""The pretrained backbones the project offers (keras.applications): the one list of them.

`fashion/params.py` validates `model` against BACKBONES; `fashion/features/extractor.py` builds them.
Nothing here imports Keras until a backbone is asked for.
"""

import os
import socket
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

# The repository's root: weights files named relative to it are found from any working directory.
REPO_ROOT = Path(__file__).resolve().parents[2]

# name: (keras.applications constructor, the keras.applications module with its preprocess_input,
#        whether it takes a width multiplier alpha)
BACKBONES = {
    "mobilenet": ("MobileNet", "mobilenet", True),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", True),
    "vgg16": ("VGG16", "vgg16", False),
    "resnet50": ("ResNet50", "resnet50", False),
}

# How many blocks each backbone has for fine-tuning to open from the top (finetune.unfreeze): MobileNet's 13
# depthwise-separable blocks; MobileNetV2's first block, 16 inverted-residual blocks and its last 1x1
# convolution; ResNet50's 16 residual blocks; VGG16's 5 blocks of convolutions. fashion/models/finetuning.py
# finds them by layer name.
BLOCKS = {"mobilenet": 13, "mobilenet_v2": 18, "resnet50": 16, "vgg16": 5}


def application(name):
    """(constructor, preprocess_input, takes alpha) of one backbone (importing fashion first keeps TensorFlow quiet)."""
    import keras

    constructor, module, takes_alpha = BACKBONES[name]
    return getattr(keras.applications, constructor), getattr(keras.applications, module).preprocess_input, takes_alpha


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


# Pretrained weights the repository carries (weights/, each with its licence and origin beside it), by
# (backbone, alpha): what `features.weights: auto` loads when Keras has no ImageNet file cached, before any
# download is tried, so that the default pipeline learns on a machine without internet.
BUNDLED_WEIGHTS = {("mobilenet", 0.25): "weights/mobilenet_0.25_224_no_top.h5"}
# Where keras.applications downloads its ImageNet weights from.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)


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
