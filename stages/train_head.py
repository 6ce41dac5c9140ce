"""Stage `train_head`: a small classifier on the cached backbone features.

The backbone already pooled each image into one vector (global average pooling), so the
head is the original project's top: Dense + ReLU, Dropout, softmax, here with the inputs
standardised by a Normalization layer fitted on the training features and saved in the
model. It trains in seconds because the backbone never runs here.
"""

import logging
import time
from pathlib import Path

from stages.errors import PipelineError, run_stage
from stages.features import FEATURES_DIR, RESAMPLED_DIR, load_split, read_info
from stages.params import load_params
from stages.recipes import BackboneRecipe, Preprocessing
from stages.runtime import make_reproducible
from stages.training import best_epoch, calibrated, save_model, training_callbacks, write_history

log = logging.getLogger("train_head")

MODEL_PATH = Path("models/head.keras")
HISTORY_PATH = Path("plots/head/history.csv")


def build_head(train_features, num_classes, units, dropout, learning_rate, input_dropout=0.0, l2=0.0):
    import keras

    standardize = keras.layers.Normalization(name="standardize")
    standardize.adapt(train_features)
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
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_head(params, features_dir=FEATURES_DIR, resampled_dir=RESAMPLED_DIR,
               model_path=MODEL_PATH, history_path=HISTORY_PATH):
    make_reproducible(params["seed"])
    info = read_info(features_dir)
    train_x, train_y = load_split(resampled_dir, "train")
    val_x, val_y = load_split(features_dir, "validation")
    if not len(val_y):
        raise PipelineError("the validation split is empty; early stopping needs it: raise split.validation")
    head = params["head"]
    model = build_head(train_x, len(info["classes"]), head["units"], head["dropout"], head["learning_rate"],
                       head["input_dropout"], head["l2"])
    start = time.perf_counter()
    history = model.fit(train_x, train_y, validation_data=(val_x, val_y), epochs=head["epochs"],
                        batch_size=head["batch_size"], callbacks=training_callbacks(head["patience"]),
                        shuffle=True, verbose=2)
    seconds = time.perf_counter() - start
    best = best_epoch(history)
    model, temperature = calibrated(model, head["calibrate"], val_x, val_y, head["batch_size"])
    write_history(history, history_path)
    save_model(model, model_path, {
        "kind": "head",
        "classes": info["classes"],
        # Both recipes whole, as the extract stage recorded them: prediction rebuilds from these alone.
        Preprocessing.RECORD_KEY: info[Preprocessing.RECORD_KEY],
        BackboneRecipe.RECORD_KEY: info[BackboneRecipe.RECORD_KEY],
        "seed": params["seed"],
        "best_epoch": best,
        "epochs_run": len(history.history["loss"]),
        "best_val_loss": round(float(history.history["val_loss"][best - 1]), 6),
        "best_val_accuracy": round(float(history.history["val_accuracy"][best - 1]), 6),
        "temperature": temperature,
        "train_seconds": round(seconds, 2),
    })
    log.info("best epoch %d of %d: val_loss %.4f, val_accuracy %.4f (%.1f s)", best,
             len(history.history["loss"]), history.history["val_loss"][best - 1],
             history.history["val_accuracy"][best - 1], seconds)
    return model


def main():
    train_head(load_params())


if __name__ == "__main__":
    run_stage(main)
