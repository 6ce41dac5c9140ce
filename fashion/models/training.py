"""What both training stages share: reproducible TensorFlow, early stopping, history and saving."""

import csv
import json
import logging
import os
from pathlib import Path

from fashion.atomic import atomic_file, remove_stale_temporaries, temporary_sibling, write_json
from fashion.errors import missing

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def training_callbacks(patience, reduce_lr_patience=0, verbose=1, progress=None):
    """Early stopping on validation loss (the best weights kept); with reduce_lr_patience > 0, also halve
    the learning rate whenever validation loss has not improved for that many epochs (0 turns it off).
    With a progress callback (`epoch_progress`), also its lines; Keras's early-stopping messages are then off."""
    import keras

    if progress is not None:
        verbose = 0
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True,
                                               verbose=min(verbose, 1))]
    if progress is not None:
        callbacks.append(progress)
    if reduce_lr_patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=reduce_lr_patience, min_lr=1e-6, verbose=min(verbose, 1)))
    return callbacks


def epoch_progress(logger, what, examples, epochs, every=0.0, unit="training images"):
    """A callback that logs a training run's progress with fashion.progress.Progress, counting the `examples`
    each epoch trains on: "train_cnn: 23,730 / 237,300 training images, 410.2 training images/s, at most
    9 min 10 s left; epoch 30/300: loss 1.234, accuracy 0.550, val_loss ...", once `every` seconds have passed
    since the previous line (0: every epoch), and always for the last epoch run, whether it is the last planned
    or early stopping ended there."""
    import keras

    from fashion.progress import Progress

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.progress = Progress(logger, what, examples * epochs, unit=unit, every=every, may_end_early=True)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            scores = ", ".join(f"{name} {logs[name]:.3f}" for name in HISTORY_COLUMNS[1:] if name in logs)
            self.progress.update(examples, note=f"epoch {epoch + 1}/{epochs}: {scores}")

        def on_train_end(self, logs=None):
            self.progress.finish("early stopping ended it here")

    return EpochProgress()


def write_history(history, path):
    """One row per epoch (1-based) so DVC's linear template draws accuracy and loss curves (None: no rows)."""
    logs = history.history if history is not None else {"loss": []}
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(HISTORY_COLUMNS)
        for epoch in range(len(logs["loss"])):
            writer.writerow([epoch + 1] + [f"{logs[name][epoch]:.6f}" for name in HISTORY_COLUMNS[1:]])


def best_epoch(history):
    """The 1-based epoch with the lowest validation loss: the weights early stopping kept."""
    losses = history.history["val_loss"]
    return min(range(len(losses)), key=losses.__getitem__) + 1


def best_epoch_record(history):
    """What a model's record says of its training: the best epoch (the weights early stopping kept), the epochs
    run, and the best epoch's validation loss and accuracy (6 decimals)."""
    logs, best = history.history, best_epoch(history)
    return {"best_epoch": best, "epochs_run": len(logs["loss"]),
            "best_val_loss": round(float(logs["val_loss"][best - 1]), 6),
            "best_val_accuracy": round(float(logs["val_accuracy"][best - 1]), 6)}


def log_best_epoch(record, seconds, logger=log):
    """The line every trainer ends with: "best epoch 12 of 20: val_loss 0.4321, val_accuracy 0.8500; 3.2 s"."""
    logger.info("best epoch %d of %d: val_loss %.4f, val_accuracy %.4f; %.1f s", record["best_epoch"],
                record["epochs_run"], record["best_val_loss"], record["best_val_accuracy"], seconds)


def save_model(model, path, info):
    """Save a .keras model and a JSON of what prediction needs beside it (classes, recipes), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_sibling(path, suffix=".keras")  # Keras insists on the .keras suffix
    try:
        write_keras(model, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    write_json(path.with_suffix(".json"), info)


# Every member of a saved .keras archive gets this time stamp (zip's earliest), as Keras already gives some.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_keras(model, path):
    """model.save(path), then the archive made byte-stable. Keras stamps the save date into metadata.json and
    the weights file's zip entry, and numbers the objects that layers share (a dtype policy) by their memory
    address (`shared_object_id`) in config.json, so two saves of the same weights would differ. The date goes,
    every entry gets one fixed time, shared objects are numbered in order of appearance (the same object keeps
    one number), and the bytes depend on the model alone."""
    import zipfile

    path = Path(path)
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    stable = path.with_name(path.name + ".stable")
    try:
        with zipfile.ZipFile(stable, "w") as archive:
            for info, data in members:
                if info.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata.pop("date_saved", None)
                    data = json.dumps(metadata).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_numbered_shared_objects(json.loads(data), {})).encode()
                entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
                entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
                archive.writestr(entry, data)
        os.replace(stable, path)
    finally:
        stable.unlink(missing_ok=True)


def load_model_info(path):
    """The JSON beside a saved model."""
    info_path = Path(path).with_suffix(".json")
    if not info_path.is_file():
        raise missing(info_path)
    return json.loads(info_path.read_text())


def _numbered_shared_objects(node, numbers):
    """The config with every `shared_object_id` (a memory address) replaced by 1, 2, ... in order of first
    appearance; `numbers` maps the addresses seen so far to their numbers."""
    if isinstance(node, dict):
        return {key: numbers.setdefault(value, len(numbers) + 1) if key == "shared_object_id"
                else _numbered_shared_objects(value, numbers) for key, value in node.items()}
    if isinstance(node, list):
        return [_numbered_shared_objects(value, numbers) for value in node]
    return node


# --- temperature scaling ------------------------------------------------------------------

# The range fit_temperature searches.
TEMPERATURE_BOUNDS = (0.05, 20.0)

def fit_temperature(logits, labels):
    """The temperature T > 0 that minimises the validation negative log-likelihood of softmax(logits / T).

    One number, fitted on the validation split after training (Guo et al. 2017, "On calibration of
    modern neural networks"): it leaves every argmax, and so accuracy, unchanged, and makes a 0.8
    probability mean about 80 % right, which is what the low-confidence warning relies on.
    The NLL is convex in 1/T; a bounded scalar search over log T in [log 1/20, log 20] finds it.
    """
    import numpy as np
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return 1.0

    def nll(log_t):
        z = logits / np.exp(log_t)
        return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(labels)), labels]))

    low, high = TEMPERATURE_BOUNDS
    best = minimize_scalar(nll, bounds=(np.log(low), np.log(high)), method="bounded", options={"xatol": 1e-6})
    return round(float(np.exp(best.x)), 4)


def at_temperature_bound(temperature):
    """True when a fitted temperature sits at an end of its search (within 1 %): the validation predictions
    wanted a more extreme one, which means they are degenerate (one class everywhere, or all wrong), not calibrated."""
    low, high = TEMPERATURE_BOUNDS
    return temperature <= low * 1.01 or temperature >= high / 1.01


def with_temperature(model, validation, labels, batch_size):
    """The model with its softmax divided by the temperature fitted on validation, and that temperature.

    The model must end in a Dense layer named "logits" and a Softmax named "probabilities"; the
    result has the same inputs and layers plus a "temperature" scaling before the softmax, so
    evaluation and prediction get calibrated probabilities from the saved file with no extra step.
    """
    import keras

    # The softmax's input, not the "logits" layer's .output: a layer shared with another model (the
    # fine-tuned model reuses the head's) has an output in each model's graph, and this one is ours.
    logits = model.get_layer("probabilities").input
    sizing = {} if batch_size is None else {"batch_size": batch_size}  # None: validation is a batch sequence
    val_logits = keras.Model(model.inputs, logits).predict(validation, verbose=0, **sizing)
    temperature = fit_temperature(val_logits, labels)
    scaled = keras.layers.Rescaling(1 / temperature, name="temperature")(logits)
    outputs = keras.layers.Softmax(name="probabilities")(scaled)  # replaces the uncalibrated one
    return keras.Model(model.inputs, outputs, name=model.name), temperature


def calibrated(model, enabled, validation, labels, batch_size):
    """(model, T): with_temperature when calibration is enabled, else the model as it is and T = 1."""
    if not enabled:
        return model, 1.0
    model, temperature = with_temperature(model, validation, labels, batch_size)
    log.info("temperature scaling on validation: T = %.3f", temperature)
    return model, temperature
