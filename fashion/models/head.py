"""The classifier head on cached backbone features: built and trained the same way by the
train_head stage and inside every cross-validation fold.

The backbone already pooled each image into one vector (global average pooling), so the
head is the original project's top: Dense + ReLU, Dropout, softmax, here with the inputs
standardised by a Normalization layer fitted on the training features and saved in the model.
"""

import contextlib
import logging
import time

from fashion.atomic import check_writable, remove_stale
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.errors import PipelineError, outdated
from fashion.features.store import load_split, read_info
from fashion.models.provenance import RECORD_KEY, trained_on
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
from fashion.runtime import make_reproducible, steady
from fashion.timings import record_timing

log = logging.getLogger(__name__)

# train_head's progress: a line after this many seconds of epochs (a head's epoch takes a fraction of one).
PROGRESS_SECONDS = 10.0


def build_head(train_features, num_classes, units, dropout, learning_rate, input_dropout=0.0, l2=0.0):
    import keras

    standardize = keras.layers.Normalization(name="standardize")
    standardize.adapt(train_features)
    ignore_constant_features(standardize)
    # A few hundred images and a thousand features overfit fast: dropout on the inputs and
    # L2 on the weights are what held up in cross-validation on the neckline photos.
    regularizer = keras.regularizers.l2(l2) if l2 else None
    inputs = keras.Input(shape=(train_features.shape[1],), name="features")
    x = standardize(inputs)
    x = keras.layers.Dropout(input_dropout, name="input_dropout")(x)
    x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, kernel_regularizer=regularizer, name="logits")(x)
    outputs = keras.layers.Softmax(name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name="head")
    # Many steps per call into TensorFlow: a head's step is tiny, so Python's per-step overhead was a quarter
    # of each CV fold's time. The same steps in the same order: the weights come out bit-identical.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=32)
    return model


# A feature whose standard deviation in the training features is below this share of the median feature's
# is constant there (a ReLU channel no training image turns on): it tells the classes nothing.
CONSTANT_SD_SHARE = 1e-3
IGNORED_VARIANCE = 1e12  # standardised by sd 1e6: every value of the feature becomes about 0


def ignore_constant_features(standardize):
    """Make the adapted Normalization map features that are constant in training to about 0.

    Standardising divides by the feature's sd, floored by Keras at 1e-7: a feature that was 0 in every training
    image but is 0.5 in a new one would enter the classifier as 5 million and could decide its prediction (the
    validation loss of a head on a handful of images ran to 1e5). Features that vary are left exactly as adapted.
    """
    import numpy as np
    from keras import ops

    variance = ops.convert_to_numpy(standardize.adapt_variance).copy()
    floor = (CONSTANT_SD_SHARE ** 2) * float(np.median(variance))
    constant = variance <= floor
    if constant.any():
        variance[constant] = IGNORED_VARIANCE
        standardize.adapt_variance.assign(variance)
        standardize.finalize_state()
        log.info("%d of %d features are constant in the training features: the head ignores them",
                 int(constant.sum()), len(variance))
    return int(constant.sum())


def fit_head(train_x, train_y, val_x, val_y, num_classes, head, seed, logger=None):
    """(model, history): a head built from params' `head` section, trained on (train_x, train_y) with early
    stopping on (val_x, val_y); the weights of the epoch with the lowest validation loss are kept. With a
    logger, a progress line every PROGRESS_SECONDS (and at the end); without, silent (the CV folds).

    The data go in as tf.data pipelines (reshuffled every epoch from `seed`): half the time per epoch
    of NumPy arrays, which matters for the hundreds of short epochs a head runs in every CV fold. Autotuning is
    off (fashion.runtime.steady): the same batches, 10-15 % faster.
    """
    import tensorflow as tf

    model = build_head(train_x, num_classes, head.units, head.dropout, head.learning_rate,
                       head.input_dropout, head.l2)
    train = steady(tf.data.Dataset.from_tensor_slices((train_x, train_y))
                   .shuffle(len(train_y), seed=seed, reshuffle_each_iteration=True).batch(head.batch_size).prefetch(2))
    validation = steady(tf.data.Dataset.from_tensor_slices((val_x, val_y)).batch(head.batch_size).cache())
    progress = None if logger is None else epoch_progress(logger, "train_head", len(train_y), head.epochs,
                                                          PROGRESS_SECONDS, unit="training vectors")
    history = model.fit(train, validation_data=validation, epochs=head.epochs,
                        callbacks=training_callbacks(head.patience, verbose=0, progress=progress),
                        shuffle=False, verbose=0)  # shuffled above
    return model, history


def train_head(params, paths=Paths()):
    features_dir, resampled_dir = paths.features, paths.resampled
    model_path, history_path = paths.head, paths.history("head")
    outputs = (model_path, model_path.with_suffix(".json"), history_path)
    check_writable(*outputs)
    make_reproducible(params.seed)
    info = read_info(features_dir)
    if "data" not in info:
        raise outdated(features_dir / "info.json", "was written by an older version of the pipeline (no 'data' record)")
    train_x, train_y = load_split(resampled_dir, "train")
    val_x, val_y = load_split(features_dir, "validation")
    if not len(val_y):
        raise PipelineError("the validation split is empty; early stopping needs it: raise split.validation")
    head = params.head
    start = time.perf_counter()
    model, history = fit_head(train_x, train_y, val_x, val_y, len(info["classes"]), head, params.seed,
                              logger=log)
    seconds = time.perf_counter() - start
    record = best_epoch_record(history)
    model, temperature = calibrated(model, head.calibrate, val_x, val_y, head.batch_size)
    try:
        write_history(history, history_path)
        save_model(model, model_path, {
            "kind": "head",
            "classes": info["classes"],
            # Both recipes whole, as the extract stage recorded them: prediction rebuilds from these alone.
            Preprocessing.RECORD_KEY: info[Preprocessing.RECORD_KEY],
            BackboneRecipe.RECORD_KEY: info[BackboneRecipe.RECORD_KEY],
            "seed": params.seed,
            **record,
            "temperature": temperature,
            RECORD_KEY: trained_on(info["data"], params, info[BackboneRecipe.RECORD_KEY]),
        })
    except BaseException:  # none of the three without the others: a later stage would read them as current
        with contextlib.suppress(OSError):
            remove_stale(*outputs)
        raise
    record_timing(paths.timings("train_head"), train_seconds=round(seconds, 2))
    log_best_epoch(record, seconds, log)
    return model


