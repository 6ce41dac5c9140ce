"""The pretrained backbones the project offers (keras.applications): the one list of them and their blocks.

Their names and block counts are in `fashion/names.py` (params.yaml is checked against them without importing
this module); `fashion/features/frozen_backbone.py` builds them, `fashion/features/weights.py` finds their weights.
Nothing here imports Keras until a backbone is asked for.
"""

# Each of fashion.names.BACKBONES (tests/test_names.py checks they agree):
# name: (keras.applications constructor, the keras.applications module with its preprocess_input,
#        whether it takes a width multiplier alpha)
APPLICATIONS = {
    "mobilenet": ("MobileNet", "mobilenet", True),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", True),
    "vgg16": ("VGG16", "vgg16", False),
    "resnet50": ("ResNet50", "resnet50", False),
}


def application(name):
    """(constructor, preprocess_input, takes alpha) of one backbone (importing fashion first keeps TensorFlow quiet)."""
    import keras

    constructor, module, takes_alpha = APPLICATIONS[name]
    return getattr(keras.applications, constructor), getattr(keras.applications, module).preprocess_input, takes_alpha
