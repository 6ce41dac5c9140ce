"""Stage `train_head`: a small classifier (fashion/models/head.py) on the cached backbone features.

It trains in seconds because the backbone never runs here; early stopping watches the
validation split, and the softmax temperature is fitted on it afterwards.
"""

import contextlib
import logging
import time

from fashion.atomic import check_writable, remove_stale
from fashion.errors import PipelineError, run_stage
from fashion.features.store import load_split, read_info
from fashion.models.head import fit_head
from fashion.params import load_params
from fashion.paths import Paths
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.runtime import make_reproducible
from fashion.models.training import best_epoch, calibrated, save_model, write_history

log = logging.getLogger(__name__)


def train_head(params, paths=Paths()):
    features_dir, resampled_dir = paths.features, paths.resampled
    model_path, history_path = paths.head, paths.history("head")
    outputs = (model_path, model_path.with_suffix(".json"), history_path)
    check_writable(*outputs)
    make_reproducible(params["seed"])
    info = read_info(features_dir)
    train_x, train_y = load_split(resampled_dir, "train")
    val_x, val_y = load_split(features_dir, "validation")
    if not len(val_y):
        raise PipelineError("the validation split is empty; early stopping needs it: raise split.validation")
    head = params["head"]
    start = time.perf_counter()
    model, history = fit_head(train_x, train_y, val_x, val_y, len(info["classes"]), head, params["seed"],
                              logger=log)
    seconds = time.perf_counter() - start
    best = best_epoch(history)
    model, temperature = calibrated(model, head["calibrate"], val_x, val_y, head["batch_size"])
    try:
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
    except BaseException:  # none of the three without the others: a later stage would read them as current
        with contextlib.suppress(OSError):
            remove_stale(*outputs)
        raise
    log.info("best epoch %d of %d: val_loss %.4f, val_accuracy %.4f (%.1f s)", best,
             len(history.history["loss"]), history.history["val_loss"][best - 1],
             history.history["val_accuracy"][best - 1], seconds)
    return model


def main():
    train_head(load_params())


if __name__ == "__main__":
    run_stage(main)
