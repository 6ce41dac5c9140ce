"""Stage `train_cnn`: the custom CNN (fashion/models/cnn.py), trained from scratch on the prepared images.

The model takes images exactly as data/prepared stores them and does its own resizing, augmentation
and rescaling, so prediction can never preprocess differently from training. Images stream from the
image store one batch at a time. Writes models/cnn.keras (+ models/cnn.json), plots/cnn/history.csv
and metrics/cnn_train.json.
"""

import logging

from fashion.atomic import check_writable, remove_stale, write_json
from fashion.data import dataset
from fashion.data.image_data import ImageBatches, pixel_splits
from fashion.data.recipes import Preprocessing
from fashion.errors import run_stage
from fashion.models.cnn import fit_cnn, speed, training_metrics
from fashion.models.training import calibrated, save_model, write_history
from fashion.params import load_params
from fashion.paths import Paths
from fashion.runtime import make_reproducible

log = logging.getLogger(__name__)


def train_cnn(params, paths=Paths()):
    """Train the CNN on the train split with early stopping on validation; write model, history and metrics.

    Returns the trained model (best weights) and the metrics written to paths.cnn_train.
    """
    cnn, seed = params["cnn"], params["seed"]
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
        validation = ImageBatches(store, val_rows, val_labels, len(classes), cnn["batch_size"])
        model, temperature = calibrated(model, cnn["calibrate"], validation, val_labels, None)

    metrics = training_metrics(history, seconds, len(train_rows), len(val_rows))
    metrics["temperature"] = temperature
    write_history(history, paths.history("cnn"))
    save_model(model, paths.cnn, {
        "kind": "cnn", "classes": classes, Preprocessing.RECORD_KEY: preprocessing.to_record(),
        "seed": seed, "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
        "best_val_loss": metrics["best_val_loss"], "best_val_accuracy": metrics["best_val_accuracy"],
        "temperature": temperature,
        **speed(seconds, len(train_rows), metrics["epochs_run"])})
    write_json(paths.cnn_train, metrics)
    log.info("best epoch %d of %d: val_loss %.4f, val_accuracy %.4f; %.0f s",
             metrics["best_epoch"], metrics["epochs_run"], metrics["best_val_loss"],
             metrics["best_val_accuracy"], seconds)
    return model, metrics


def main():
    train_cnn(load_params())


if __name__ == "__main__":
    run_stage(main)
