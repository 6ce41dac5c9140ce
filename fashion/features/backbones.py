"""The pretrained backbones the project offers (keras.applications): the one list of them.

`fashion/params.py` validates `model` against BACKBONES; `fashion/features/extractor.py` builds them,
`fashion/features/weights.py` finds their weights.
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
# convolution; ResNet50's 16 residual blocks; VGG16's 5 blocks of convolutions. fashion/models/finetuning.py
# finds them by layer name.
BLOCKS = {"mobilenet": 13, "mobilenet_v2": 18, "resnet50": 16, "vgg16": 5}


def application(name):
    """(constructor, preprocess_input, takes alpha) of one backbone (importing fashion first keeps TensorFlow quiet)."""
    import keras

    constructor, module, takes_alpha = BACKBONES[name]
    return getattr(keras.applications, constructor), getattr(keras.applications, module).preprocess_input, takes_alpha
