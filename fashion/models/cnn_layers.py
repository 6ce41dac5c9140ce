"""The CNN's own augmentation layers, which Keras does not have: channel shuffling and colour inversion.

Both act only in training (`fit`, or `model(x, training=True)`); at prediction the image passes
unchanged. They are registered with Keras, so a saved model that holds them loads in safe mode
once this module is imported (fashion.serving.classify imports it before loading a model).
"""

import itertools

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "necklines"
# The 6 orders of the R, G, B channels, as 3x3 permutation matrices: image @ matrix reorders them.
CHANNEL_ORDERS = np.array([np.eye(3)[list(order)].T for order in itertools.permutations(range(3))],
                          dtype=np.float32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RandomChannelShuffle(layers.Layer):
    """Each image's R, G and B channels in one of their 6 orders, drawn per image.

    A red shirt becomes blue or green, a light skin tone a cyan or violet one; outlines stay where
    they are. The network cannot tell the classes by colour and has to find the shape.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        order = keras.random.randint((ops.shape(images)[0],), 0, len(CHANNEL_ORDERS), seed=self.seed_generator)
        matrices = ops.take(ops.convert_to_tensor(CHANNEL_ORDERS, dtype=images.dtype), order, axis=0)
        return ops.einsum("bhwc,bcd->bhwd", images, matrices)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RandomInvert(layers.Layer):
    """Each image, with the given probability, as its negative (255 - value, for 0..255 pixels).

    A dark opening on a light garment becomes a light one on a dark garment: the outline, which is
    what names a neckline, is the same.
    """

    def __init__(self, probability, value_max=255.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.probability, self.value_max, self.seed = probability, value_max, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        draw = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator)
        inverted = ops.cast(draw < self.probability, images.dtype)
        return inverted * (self.value_max - images) + (1 - inverted) * images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "probability": self.probability, "value_max": self.value_max,
                "seed": self.seed}
