"""The fine-tuned backbone in cross-validation (stage `crossval` with finetune.enabled: true).

In each fold the fine-tuning model starts from that fold's head (trained by crossval.fold_head on the
fold's training part) and trains as the finetune stage trains it, with the same function
(fashion.models.finetune_model.fine_tune): from the prepared images, streamed a batch at a time, on the
images the fold's head was fitted on, with early stopping on the share of the fold's training part the
head stopped on. The held-out fold is only predicted, a batch at a time; the test split is never read.
Like the head in cross-validation it is not temperature-scaled: CV scores argmax predictions.
"""

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion.data import dataset
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.errors import PipelineError, missing, outdated
from fashion.features.store import INFO_FILE
from fashion.runtime import make_reproducible

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldImages:
    """What a fold needs to fine-tune from pixels: the image store, the store row of every pooled photo
    (in the order of folds.pooled_features) and the backbone recipe its features came from."""

    images: Path
    rows: np.ndarray
    recipe: BackboneRecipe


def fold_images(info, features_dir, prepared_dir, rows):
    """FoldImages for the pooled rows; a clear error when the prepared images cannot be the features' images."""
    source = Path(features_dir) / INFO_FILE
    recipe = BackboneRecipe.from_artifact(info, source)
    images = Path(prepared_dir) / dataset.IMAGES_FILE
    if not images.is_file():
        raise missing(images, "the prepared images fine-tuning trains on")
    summary = dataset.read_summary(prepared_dir)
    if Preprocessing.from_artifact(info, source) != Preprocessing.from_artifact(
            summary, Path(prepared_dir) / dataset.SUMMARY_FILE):
        raise outdated(source, "holds features of images prepared differently from data/prepared")
    with dataset.ImageStore(images) as store:
        if len(rows) and int(np.max(rows)) >= len(store):
            raise outdated(images, f"has {len(store)} images, but the features name row {int(np.max(rows))}")
    return FoldImages(images, np.asarray(rows, dtype=np.int64), recipe)


def check_fit_parts(classes, labels, parts):
    """Fine-tuning, like the finetune stage, needs every class among the images a fold trains on.

    parts: (repeat, fold, fit positions) of every fold. A clear error names the first fold and class without."""
    for repeat, fold, fit in parts:
        absent = [name for index, name in enumerate(classes) if not np.any(labels[fit] == index)]
        if absent:
            raise PipelineError(
                f"crossval with fine-tuning: repeat {repeat + 1} fold {fold + 1} has no training image of class(es) "
                f"{', '.join(absent)} once its held-out fold and its early-stopping share are kept apart: too few "
                "photos (or items, with split.group) of that class for crossval.folds. Lower crossval.folds, add "
                "photos, or turn fine-tuning off for cross-validation (finetune.enabled: false)")


class _Named(logging.LoggerAdapter):
    """The fold's name before each of fine_tune's log lines."""

    def process(self, msg, kwargs):
        return f"{self.extra['name']}: {msg}", kwargs


def fine_tuned_probabilities(params, images, head, labels, fit, stop, held, num_classes, seed, name="fold"):
    """(held-out probabilities, {epochs_run, best_epoch, seconds}) of the model fine-tuned from the fold's `head`
    on the pooled positions `fit`, early stopping on `stop`; `held` is only predicted. Memory: one batch.
    `name` begins its log lines."""
    from fashion.models.finetune_model import fine_tune
    from fashion.models.training import best_epoch

    settings = params.finetune
    rows = images.rows
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crossval-head-") as tmp, dataset.ImageStore(images.images) as store:
        head_path = Path(tmp) / "head.keras"
        head.save(head_path)  # fine_tune starts from a saved head, as the stage does from models/head.keras
        make_reproducible(seed)
        model, history, seconds, _ = fine_tune(head_path, images.recipe, store, (rows[fit], labels[fit]),
                                               (rows[stop], labels[stop]), num_classes, settings, seed,
                                               _Named(log, {"name": name}))
        # Called directly, not through predict(), as crossval does with the head: no graph traced per fold.
        probabilities = np.concatenate([np.asarray(model(batch.astype(np.float32), training=False))
                                        for batch in store.batches(rows[held], settings.batch_size)])
    return probabilities, {"epochs_run": len(history.history["loss"]), "best_epoch": best_epoch(history),
                           "train_seconds": round(seconds, 1), "seconds": round(time.perf_counter() - started, 1)}
