"""The custom CNN (stage `train_cnn`), trained from scratch on the prepared images.

The model takes images exactly as data/prepared stores them (uint8 values as float32 in 0..255, at
the prepared size) and does its own resizing, augmentation and rescaling, so prediction can never
preprocess differently from training. The augmentation layers only act inside `fit`: `predict` and
`model(x, training=False)` see the image unchanged. (A bare `model(x)` in Keras 3 counts as
training for these layers: always pass training=False when calling the model directly.)

Images are streamed from the image store one batch at a time, so memory does not grow with the
data set.
"""

import contextlib
import logging
import math
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from fashion.atomic import check_writable, remove_stale, write_json
from fashion.data import dataset
from fashion.data.pixel_batches import (
    ImageBatches,
    augmentation_layers,
    balanced_class_weights,
    layer_seed,
    pixel_splits,
)
from fashion.data.recipes import Preprocessing
from fashion.models.provenance import RECORD_KEY, data_record, trained_on
from fashion.models.training import (
    best_epoch_record,
    calibrated,
    epoch_progress,
    log_best_epoch,
    save_model,
    training_callbacks,
    write_history,
)
from fashion.paths import Paths
from fashion.runtime import make_reproducible
from fashion.timings import record_timing

log = logging.getLogger(__name__)


# --- the network ---------------------------------------------------------------------

def build_cnn(num_classes, input_size, cnn, seed, steps_per_epoch=1):
    """The compiled network, top to bottom as in the architecture diagram.

    Input: (input_size, input_size, 3) float32 pixel values in 0..255 (the prepared images).
    steps_per_epoch sets the length of the cosine schedule. With presets/cnn_original.yaml this is the
    original project's network: 4 x (3x3 conv + ReLU, 2x2 max pool),
    flatten, Dense 512 + Dropout 0.5, Dense 256 + Dropout 0.5, softmax.
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    cropping = region_cropping(cnn.region, input_size)
    if any(any(side) for side in cropping):
        # Inside the model, so that prediction cuts out the same part of every photo.
        x = layers.Cropping2D(cropping, name="region")(x)
    if tuple(x.shape[1:3]) != (cnn.image_size, cnn.image_size):
        # Antialiasing, so that shrinking 224 -> 96 averages pixels instead of skipping them.
        x = layers.Resizing(cnn.image_size, cnn.image_size, antialias=True, name="resize")(x)
    for augment in augmentation_layers(cnn.augment, seed):
        x = augment(x)
    x = layers.Rescaling(1 / 255, name="rescale")(x)
    if cnn.standardize:
        # Each image's channels to mean 0 and sd 1: the garment's colour and the light's brightness go,
        # the contrast between the garment and what shows through the neckline stays.
        x = layers.LayerNormalization(axis=(1, 2), center=False, scale=False, name="standardize")(x)
    for block, filters in enumerate(cnn.filters, start=1):
        x = conv_block(x, filters, cnn.batch_norm, block, cnn.convolutions)
    if cnn.pooling == "flatten":
        x = layers.Flatten(name="flatten")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="global_average")(x)
    for index, units in enumerate(cnn.dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"dense{index}")(x)
        x = layers.Dropout(cnn.dropout, seed=layer_seed(seed, 100 + index), name=f"dropout{index}")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probabilities")(logits)

    model = keras.Model(inputs, outputs, name="cnn")
    # One-hot labels (ImageBatches), so that the loss can smooth them.
    model.compile(optimizer=optimizer(cnn, steps_per_epoch),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cnn.label_smoothing),
                  metrics=["accuracy"])
    return model


def optimizer(cnn, steps_per_epoch):
    """Adam (AdamW with cnn.weight_decay > 0) at cnn.learning_rate, constant or decayed along a cosine.

    The cosine runs from the full rate to zero over all cnn.epochs; early stopping may end a run before.
    """
    rate = cnn.learning_rate
    if cnn.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, cnn.epochs * steps_per_epoch))
    if cnn.weight_decay:
        return keras.optimizers.AdamW(rate, weight_decay=cnn.weight_decay)
    return keras.optimizers.Adam(rate)


def region_cropping(region, size):
    """Cropping2D's ((top, bottom), (left, right)) pixels for cnn.region (fractions) on size x size images."""
    top, bottom = round(region.top * size), round(region.bottom * size)
    left, right = round(region.left * size), round(region.right * size)
    return (top, size - bottom), (left, size - right)


def conv_block(x, filters, batch_norm, block, convolutions=1):
    """`convolutions` x (3x3 convolution + ReLU, with batch normalisation between them if asked), then 2x2
    max pooling. The original layout has one convolution per block; two see more shape per scale."""
    for index in range(1, convolutions + 1):
        name = f"conv{block}" if convolutions == 1 else f"conv{block}_{index}"
        if batch_norm:
            # No bias: batch normalisation's own shift makes it redundant.
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
            # Momentum 0.9, not Keras's 0.99: with a few hundred images an epoch is a handful of steps, and
            # the moving statistics that validation and prediction use would otherwise lag for many epochs.
            x = layers.BatchNormalization(momentum=0.9, name=name.replace("conv", "batch_norm"))(x)
            x = layers.ReLU(name=name.replace("conv", "relu"))(x)
        else:
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
    return layers.MaxPooling2D(2, name=f"pool{block}")(x)


FRONT_LAYERS = ("region", "resize")  # build_cnn's first layers: fixed, weightless, the same in every epoch


def split_front(model):
    """(front, body): the model's first layers that cut out the region and resize it, and a model of the layers
    after them, sharing their weights. (None, model) when the model has neither layer.

    build_cnn's network is a chain of single-input layers, so the body is rebuilt by calling the same layer
    objects on a new input: fitting the body fits the model.
    """
    names = [layer.name for layer in model.layers[1:]]
    cut = 0
    while cut < len(names) and names[cut] in FRONT_LAYERS:
        cut += 1
    if not cut:
        return None, model
    front = keras.Model(model.inputs, model.layers[cut].output, name="cnn_front")
    inputs = keras.Input(front.output.shape[1:], name="front_output")
    x = inputs
    for layer in model.layers[cut + 1:]:
        x = layer(x)
    body = keras.Model(inputs, x, name="cnn_body")
    body.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    return front, body


def front_inputs(front, store, rows, path, batch_size=256):
    """front's output for the store's `rows`, in that order, written batch by batch to a .npy at `path` and
    returned open for reading (a dataset.NpyReader: close it), so memory is bounded by the batch at any data
    set size."""
    with dataset.NpyWriter(path, front.output.shape[1:], np.float32) as out:
        for start in range(0, len(rows), batch_size):
            out.append(front.predict_on_batch(store.read(rows[start:start + batch_size]).astype(np.float32)))
    return dataset.NpyReader(path)


# --- training ---------------------------------------------------------------------------

# A progress line after this many seconds of epochs (and for the last one): a few lines, not one per epoch.
PROGRESS_SECONDS = 10.0


def fit_cnn(store, train, validation, num_classes, cnn, seed, logger=log):
    """(model, history, seconds): a network built from the `cnn` params section, trained on the image store's
    `train` (rows, labels) with early stopping on `validation` (rows, labels); the best weights are kept.

    The stage's training, also used by benchmarks/cnn_cv.py on folds. The caller seeds (make_reproducible).
    """
    (train_rows, train_labels), (val_rows, val_labels) = train, validation
    steps_per_epoch = math.ceil(len(train_rows) / cnn.batch_size)
    model = build_cnn(num_classes, store.size, cnn, seed, steps_per_epoch=steps_per_epoch)
    class_weight = balanced_class_weights(train_labels, num_classes) if cnn.class_weight else None
    logger.info("training on %d images, validating on %d; %s parameters",
                len(train_rows), len(val_rows), f"{model.count_params():,}")
    started = time.perf_counter()
    front, body = split_front(model)
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as scratch_files:

        def batches(rows, labels, name, order_seed=None):
            if front is None:
                return ImageBatches(store, rows, labels, num_classes, cnn.batch_size, seed=order_seed).dataset()
            # The region cut and the resize have no weights and no randomness: run them once per image
            # instead of once per epoch, into a scratch file so memory stays bounded
            # by the batch. The body is the model's own layers after them, so training it trains the model.
            inputs = scratch_files.enter_context(front_inputs(front, store, rows, Path(scratch) / f"{name}.npy"))
            return ImageBatches(inputs, np.arange(len(rows)), labels, num_classes, cnn.batch_size,
                                seed=order_seed).dataset()

        history = body.fit(batches(train_rows, train_labels, "train", seed),
                           steps_per_epoch=steps_per_epoch,
                           validation_data=batches(val_rows, val_labels, "validation"), epochs=cnn.epochs,
                           class_weight=class_weight,
                           callbacks=training_callbacks(
                               cnn.patience, cnn.reduce_lr_patience,
                               progress=None if logger is None else epoch_progress(
                                   logger, "train_cnn", len(train_rows), cnn.epochs, PROGRESS_SECONDS)),
                           shuffle=False, verbose=0)
    return model, history, time.perf_counter() - started


def training_metrics(history, train_images, validation_images):
    """metrics/cnn_train.json: the best epoch's record and the images trained and validated on."""
    return {**best_epoch_record(history), "train_images": train_images, "validation_images": validation_images}


def speed(seconds, train_images, epochs_run):
    """Seconds of fit and training images per second (validation passes included): a run's timings."""
    return {"train_seconds": round(seconds, 2),
            # Training images seen per second of fit, validation passes included.
            "images_per_second": round(train_images * epochs_run / seconds, 1)}


def train_cnn(params, paths=Paths()):
    """Train the CNN on the train split with early stopping on validation; write model, history and metrics.

    Returns the trained model (best weights) and the metrics written to paths.cnn_train.
    """
    cnn, seed = params.cnn, params.seed
    outputs = (paths.cnn, paths.cnn.with_suffix(".json"), paths.history("cnn"), paths.cnn_train)
    check_writable(*outputs)
    make_reproducible(seed)
    summary, (train_rows, train_labels), (val_rows, val_labels) = pixel_splits(paths.prepared)
    classes = summary["classes"]
    preprocessing = Preprocessing.from_artifact(summary, paths.prepared / dataset.SUMMARY_FILE)
    # An earlier run's outputs go first, so a failed run cannot leave them looking current.
    remove_stale(*outputs)

    with dataset.ImageStore(paths.prepared / dataset.IMAGES_FILE) as store:
        model, history, seconds = fit_cnn(store, (train_rows, train_labels), (val_rows, val_labels), len(classes),
                                          cnn, seed, logger=log)
        validation = ImageBatches(store, val_rows, val_labels, len(classes), cnn.batch_size)
        model, temperature = calibrated(model, cnn.calibrate, validation, val_labels, None)

    metrics = training_metrics(history, len(train_rows), len(val_rows))
    metrics["temperature"] = temperature
    write_history(history, paths.history("cnn"))
    save_model(model, paths.cnn, {
        "kind": "cnn", "classes": classes, Preprocessing.RECORD_KEY: preprocessing.to_record(),
        "seed": seed, **best_epoch_record(history), "temperature": temperature, RECORD_KEY: trained_on(data_record(summary), params)})
    record_timing(paths.timings("train_cnn"), **speed(seconds, len(train_rows), metrics["epochs_run"]))
    write_json(paths.cnn_train, metrics)
    log_best_epoch(metrics, seconds, log)
    return model, metrics


