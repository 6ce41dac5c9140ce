"""ImageBatches.dataset(): the tf.data pipeline the CNN and the fine-tuning train on gives Keras the batches the
PyDataset gave, in the same order, so training on it gives the same weights; and its autotuning is off."""

import keras
import numpy as np
import tensorflow as tf

from fashion.data.pixel_batches import ImageBatches, balanced_class_weights
from fashion.runtime import make_reproducible, steady

ROWS, CLASSES, BATCH = 70, 3, 16  # 5 batches an epoch, the last one short


class ArrayStore:
    """What ImageBatches reads of an image store (dataset.NpyReader): read(rows) -> those rows, from memory."""

    def __init__(self, array):
        self.array = array

    def read(self, rows):
        return self.array[rows]


def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (ROWS, 4, 4, 3)).astype(np.float32), rng.integers(0, CLASSES, ROWS)


def trained_weights(data, labels, through_pipeline):
    make_reproducible(3)
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3, seed=5)(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy")
    train = ImageBatches(ArrayStore(data), np.arange(ROWS), labels, CLASSES, BATCH, seed=11)
    validation = ImageBatches(ArrayStore(data), np.arange(20), labels[:20], CLASSES, BATCH)
    weights = balanced_class_weights(labels, CLASSES)
    if through_pipeline:
        model.fit(train.dataset(), steps_per_epoch=len(train), validation_data=validation.dataset(), epochs=3,
                  class_weight=weights, shuffle=False, verbose=0)
    else:
        model.fit(train, validation_data=validation, epochs=3, class_weight=weights, shuffle=False, verbose=0)
    return model.get_weights()


def test_training_on_the_pipeline_gives_the_weights_training_on_the_py_dataset_gives():
    data, labels = images()
    for from_pipeline, from_py_dataset in zip(trained_weights(data, labels, True), trained_weights(data, labels, False)):
        np.testing.assert_array_equal(from_pipeline, from_py_dataset)


def test_a_shuffled_pipeline_reshuffles_every_epoch_and_starts_over_on_a_new_pass():
    data, labels = images()
    pipeline = ImageBatches(ArrayStore(data), np.arange(ROWS), labels, CLASSES, BATCH, seed=11).dataset()

    def first_pixels(batches):
        return np.concatenate([images[:, 0, 0, 0] for images, _ in batches])

    two_epochs = first_pixels(pipeline.take(10))
    first, second = two_epochs[:ROWS], two_epochs[ROWS:]
    assert sorted(first) == sorted(second) == sorted(data[:, 0, 0, 0])  # every row once an epoch
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first_pixels(pipeline.take(10)), two_epochs)  # a new pass: the same orders


def test_an_unshuffled_pipeline_is_one_epoch_in_manifest_order_with_its_length_known():
    data, labels = images()
    pipeline = ImageBatches(ArrayStore(data), np.arange(ROWS), labels, CLASSES, BATCH).dataset()
    assert int(pipeline.cardinality()) == 5
    batches = list(pipeline.as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([images for images, _ in batches]), data)
    np.testing.assert_array_equal(np.concatenate([onehot for _, onehot in batches]).argmax(axis=1), labels)


def test_steady_turns_autotuning_off_and_keeps_the_elements():
    pipeline = tf.data.Dataset.range(10).shuffle(10, seed=1, reshuffle_each_iteration=False).batch(4).prefetch(2)
    assert pipeline.options().autotune.enabled is not False
    quiet = steady(pipeline)
    assert quiet.options().autotune.enabled is False
    assert [list(b) for b in quiet.as_numpy_iterator()] == [list(b) for b in pipeline.as_numpy_iterator()]
