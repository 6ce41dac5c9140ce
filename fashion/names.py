"""The names several modules need, in one place that imports nothing of the library.

`fashion/params.py` checks params.yaml against them; the modules that act on them (the backbones, the
recipes, the locator) take them from here, so that reading params.yaml never imports those modules.
"""

# The pretrained backbones (model); fashion/features/backbones.py says how keras.applications builds each.
BACKBONES = ("mobilenet", "mobilenet_v2", "vgg16", "resnet50")

# How many blocks each backbone has for fine-tuning to open from the top (finetune.unfreeze): MobileNet's 13
# depthwise-separable blocks; MobileNetV2's first block, 16 inverted-residual blocks and its last 1x1
# convolution; ResNet50's 16 residual blocks; VGG16's 5 blocks of convolutions. fashion/models/finetune_model.py
# finds them by layer name.
BLOCKS = {"mobilenet": 13, "mobilenet_v2": 18, "resnet50": 16, "vgg16": 5}

# How a photo is resized to image_size x image_size (data.resize; fashion/data/images.py).
RESIZE_MODES = ("stretch", "pad", "crop")

# How the neckline is found in a photo (data.locate; fashion/data/locate.py): none keeps the region, face
# anchors the box under a face, auto tries the face, then BlazePose's shoulders, then the close-up rule.
LOCATORS = ("none", "face", "auto")

# Where the photos come from (data.source; fashion/data/sources.py).
SOURCES = ("synthetic", "folder", "fashion_mnist")

# How the extract stage runs the backbone (features.engine): in this process, or on Ray's actors.
ENGINES = ("local", "ray")

# The file every stage reads its settings from.
PARAMS_FILE = "params.yaml"
