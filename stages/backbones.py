"""The pretrained backbones the project offers (keras.applications): the one list of them.

`stages/params.py` validates `model` against BACKBONES; `stages/extractor.py` builds them.
Nothing here imports Keras until a backbone is asked for.
"""

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
# convolution; ResNet50's 16 residual blocks; VGG16's 5 blocks of convolutions. stages/finetuning.py
# finds them by layer name.
BLOCKS = {"mobilenet": 13, "mobilenet_v2": 18, "resnet50": 16, "vgg16": 5}


def application(name):
    """(constructor, preprocess_input, takes alpha) of one backbone (import stages.runtime before it)."""
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
