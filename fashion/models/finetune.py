"""The `finetune` stage: the backbone learns the attribute, starting from the trained head.

Two-phase transfer learning: train_head fitted the head on frozen features; here the whole model
(pixels -> augmentation -> preprocess_input -> backbone -> head, fashion/models/finetune_model.py) trains with the
top `finetune.unfreeze` blocks of the backbone open, at a low learning rate with warm-up and cosine
decay, early stopping on validation loss with the best weights kept, then temperature scaling on
validation like the other models. Images stream from the image store a batch at a time.

With `finetune.enabled: false` (the default: fine-tuning on a CPU takes minutes per epoch) the stage
only writes models/finetuned/finetuned.json saying so, and evaluate, predict and serve leave the model out.

Writes models/finetuned/ (finetuned.keras + finetuned.json, atomically, as one folder) and
plots/finetuned/history.csv.
"""

import logging
from pathlib import Path

from fashion.atomic import atomic_dir, check_writable, remove_stale, write_json
from fashion.data import dataset
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.errors import outdated
from fashion.models.provenance import RECORD_KEY, data_record, trained_on
from fashion.models.training import (
    best_epoch_record,
    calibrated,
    load_model_info,
    log_best_epoch,
    write_history,
    write_keras,
)
from fashion.paths import Paths
from fashion.runtime import make_reproducible
from fashion.timings import record_timing

log = logging.getLogger(__name__)


NAME = "finetuned"  # models/finetuned/finetuned.keras and .json


def finetune(params, paths=Paths()):
    """Fine-tune (or, when disabled, record that it is off); returns the model, or None when disabled."""
    settings, seed = params.finetune, params.seed
    prepared_dir, head_path = paths.prepared, paths.head
    out_dir, history_path = paths.finetuned, paths.history("finetuned")
    check_writable(out_dir, history_path)
    # An earlier run's outputs go first, so a failed run cannot leave them looking current.
    remove_stale(out_dir, history_path)
    if not settings.enabled:
        with atomic_dir(out_dir) as tmp:
            write_json(tmp / f"{NAME}.json", {
                "kind": "finetuned", "enabled": False,
                "note": "fine-tuning is off (finetune.enabled: false); turn it on with "
                        "`dvc exp run -S finetune.enabled=true`"})
        write_history(None, history_path)
        log.info("fine-tuning is off (finetune.enabled: false): nothing trained")
        return None

    # TensorFlow loads only now: with fine-tuning off, the stage takes a fraction of a second.
    from fashion.data.pixel_batches import ImageBatches, pixel_splits
    from fashion.models.finetune_model import fine_tune

    make_reproducible(seed)
    head_info = load_model_info(head_path)
    recipe = BackboneRecipe.from_artifact(head_info, Path(head_path).with_suffix(".json"))
    preprocessing = Preprocessing.from_artifact(head_info, Path(head_path).with_suffix(".json"))
    summary, (train_rows, train_labels), (val_rows, val_labels) = pixel_splits(prepared_dir)
    classes = summary["classes"]
    if head_info["classes"] != classes:
        raise outdated(head_path, f"was trained on classes {head_info['classes']}, but the prepared data has "
                                  f"{classes}")
    if preprocessing != Preprocessing.from_artifact(summary, Path(prepared_dir) / dataset.SUMMARY_FILE):
        raise outdated(head_path, "was trained on images prepared differently from data/prepared")
    if recipe.weights == "none":
        log.warning("the head's backbone has RANDOM weights (features.weights resolved to none): fine-tuning "
                    "then means training the backbone from scratch on your photos. Give it ImageNet weights "
                    "(see docs/pipeline.md, Weights)")
    with dataset.ImageStore(Path(prepared_dir) / dataset.IMAGES_FILE) as store:
        model, history, seconds, devices = fine_tune(head_path, recipe, store, (train_rows, train_labels),
                                                     (val_rows, val_labels), len(classes), settings, seed, log)
        validation = ImageBatches(store, val_rows, val_labels, len(classes), settings.batch_size)
        model, temperature = calibrated(model, settings.calibrate, validation, val_labels, None)

    record = best_epoch_record(history)
    info = {
        "kind": "finetuned", "enabled": True, "classes": classes,
        Preprocessing.RECORD_KEY: preprocessing.to_record(), BackboneRecipe.RECORD_KEY: recipe.to_record(),
        "seed": seed, "unfreeze": settings.unfreeze, **record, "temperature": temperature, "devices": devices,
        RECORD_KEY: trained_on(data_record(summary), params, recipe.to_record()),
    }
    write_history(history, history_path)
    with atomic_dir(out_dir) as tmp:  # the model and its record appear together, or not at all
        write_keras(model, tmp / f"{NAME}.keras")
        write_json(tmp / f"{NAME}.json", info)
    record_timing(paths.timings("finetune"), train_seconds=round(seconds, 2),
                  images_per_second=round(len(train_rows) * record["epochs_run"] / seconds, 1))
    log_best_epoch(record, seconds, log)
    return model


