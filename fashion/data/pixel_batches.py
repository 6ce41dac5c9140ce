"""Training on pixels: image-store batches for Keras, class weights and the augmentation layers.

The custom CNN (stage train_cnn) and the fine-tuned backbone (stage finetune) both train on the
prepared images themselves, not on cached features. Both stream them from the image store one
batch at a time (`ImageBatches`), so memory is bounded by the batch at any data set size, and both
augment inside the model (`augmentation_layers`), so the layers act in `fit` only and prediction sees
each image unchanged.
"""

import math
from pathlib import Path

import keras
import numpy as np
from keras import layers

from fashion.data import dataset
from fashion.errors import PipelineError, missing
from fashion.models.cnn_layers import RandomChannelShuffle, RandomInvert
from fashion.runtime import steady

# Every augmentation a params section may switch on, in the order they apply. A section names the ones
# it offers; a value of 0 or false leaves the layer out.
AUGMENTATIONS = ("flip", "rotation", "zoom", "shift", "brightness", "contrast", "hue", "grayscale", "channel_shuffle",
                 "invert")


class ImageBatches(keras.utils.PyDataset):
    """(images, one-hot labels) batches read from the image store, so memory is bounded by one batch.

    With a seed, the rows are reshuffled whenever Keras ends an epoch, by a generator seeded once,
    so a run is repeatable; without one they come in manifest order (validation).
    """

    def __init__(self, store, rows, labels, num_classes, batch_size, seed=None):
        super().__init__()  # one worker: batches are read in order by tf.data's prefetch thread
        self.store, self.rows, self.batch_size = store, rows, batch_size
        self.labels = np.eye(num_classes, dtype=np.float32)[labels]
        self.seed = seed
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.order = self._next_order()

    def _next_order(self):
        return np.arange(len(self.rows)) if self.rng is None else self.rng.permutation(len(self.rows))

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, index):
        return self._read(self.order[index * self.batch_size:(index + 1) * self.batch_size])

    def _read(self, chosen):
        """(images, one-hot labels) of the given positions in rows."""
        return self.store.read(self.rows[chosen]).astype(np.float32), self.labels[chosen]

    def on_epoch_end(self):
        self.order = self._next_order()

    def dataset(self):
        """The same batches in the same order, as a tf.data pipeline that reads one batch ahead with autotuning off
        (fashion.runtime.steady). Keras's own pipeline for a PyDataset autotunes, and that made CNN epochs a
        quarter longer on 2 cores (docs/default-run.md).

        With a seed the pipeline never ends: epoch after epoch in the orders the PyDataset would give, drawn from a
        generator seeded afresh for each pass over the pipeline, so nothing outside it (an extra pass, a read ahead)
        can shift them. `fit` then needs steps_per_epoch=len(self), and keeps one pass for all its epochs. Without a
        seed (validation) each pass is one epoch in manifest order.
        """
        import tensorflow as tf

        def batches_of(order):
            for start in range(0, len(order), self.batch_size):
                yield self._read(order[start:start + self.batch_size])

        def epochs():
            rng = np.random.default_rng(self.seed)
            # Keras reshuffles a PyDataset once before the first epoch: its first order goes unused. Skipped here
            # too, so that the epochs see the batches of the runs before this pipeline (and the committed results).
            rng.permutation(len(self.rows))
            while True:
                yield from batches_of(rng.permutation(len(self.rows)))

        def one_epoch():
            yield from batches_of(np.arange(len(self.rows)))

        shape = self.store.read(self.rows[:1]).shape[1:]
        signature = (tf.TensorSpec((None, *shape), tf.float32), tf.TensorSpec((None, self.labels.shape[1]), tf.float32))
        if self.seed is None:
            pipeline = tf.data.Dataset.from_generator(one_epoch, output_signature=signature)
            pipeline = pipeline.apply(tf.data.experimental.assert_cardinality(len(self)))
        else:
            pipeline = tf.data.Dataset.from_generator(epochs, output_signature=signature)
        return steady(pipeline.prefetch(1))


def balanced_class_weights(labels, num_classes):
    """{class: weight} for Keras's class_weight: scikit-learn's compute_class_weight("balanced"), n / (classes *
    count per class), so rare classes weigh more. A class absent from labels gets no entry and is not counted."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.flatnonzero(np.bincount(labels, minlength=num_classes))
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(index): float(weight) for index, weight in zip(present, weights)}


def augmentation_layers(augment, seed):
    """The random augmentation layers in the order they apply, for a params section such as cnn.augment.

    A key the section does not have (finetune.augment has no shift, hue...), or whose value is 0 or false,
    is left out. Brightness and contrast work on 0..255 values, so they come before any rescaling. Each
    layer's seed depends on its place in AUGMENTATIONS, not on which others are enabled.
    """
    makers = {
        "flip": lambda s, v: layers.RandomFlip("horizontal", seed=s, name="random_flip"),
        "rotation": lambda s, v: layers.RandomRotation(v, seed=s, name="random_rotation"),
        "zoom": lambda s, v: layers.RandomZoom(v, seed=s, name="random_zoom"),
        "shift": lambda s, v: layers.RandomTranslation(v, v, seed=s, name="random_shift"),
        "brightness": lambda s, v: layers.RandomBrightness(v, value_range=(0, 255), seed=s, name="random_brightness"),
        "contrast": lambda s, v: layers.RandomContrast(v, value_range=(0, 255), seed=s, name="random_contrast"),
        # Colour says nothing about a neckline: turning hues and dropping colour teach the network shapes.
        "hue": lambda s, v: layers.RandomHue(v, value_range=(0, 255), seed=s, name="random_hue"),
        "grayscale": lambda s, v: layers.RandomGrayscale(v, seed=s, name="random_grayscale"),
        "channel_shuffle": lambda s, v: RandomChannelShuffle(seed=s, name="random_channel_shuffle"),
        "invert": lambda s, v: RandomInvert(v, seed=s, name="random_invert"),
    }
    settings = {key: getattr(augment, key, None) for key in AUGMENTATIONS}
    return [makers[key](layer_seed(seed, offset), settings[key]) for offset, key in enumerate(AUGMENTATIONS)
            if settings[key]]


def layer_seed(seed, offset):
    """A seed derived from the run's seed, kept in range (params allow seeds up to 2**32 - 1)."""
    return (seed + offset) % 2**32


def pixel_splits(prepared_dir):
    """The prepared summary, and the (rows, labels) of the train and validation splits; a clear error
    when a model cannot train on them (a missing image store, an empty split, a class with no training images)."""
    summary = dataset.read_summary(prepared_dir)
    records = dataset.read_manifest(prepared_dir)
    if not (Path(prepared_dir) / dataset.IMAGES_FILE).is_file():
        raise missing(Path(prepared_dir) / dataset.IMAGES_FILE)
    classes = summary["classes"]
    train = dataset.split_arrays(records, "train")
    validation = dataset.split_arrays(records, "validation")
    for name, (rows, _) in (("train", train), ("validation", validation)):
        if not len(rows):
            raise PipelineError(f"the {name} split in {prepared_dir} is empty; add images and run `dvc repro prepare`")
    present = set(train[1].tolist())
    absent = [name for index, name in enumerate(classes) if index not in present]
    if absent:
        raise PipelineError(f"class(es) {', '.join(absent)} have no training images; the network cannot learn "
                            "a class it never sees: add images to those folders and run `dvc repro prepare`")
    return summary, train, validation
