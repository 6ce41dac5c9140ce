"""TensorFlow's environment and seeding, in one place.

Importing this module sets the environment before Keras loads TensorFlow: the project runs on
TensorFlow only, and TF's C++ start-up messages would bury the per-epoch lines in `dvc repro`'s
output. Import it before the first `import keras`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_reproducible(seed):
    """Same params, same data, same machine: same weights. Call before building any model."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
