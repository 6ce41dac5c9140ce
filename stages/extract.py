"""Stage `extract`: run the frozen backbone once over every prepared image and cache the features.

This is the only stage that runs the backbone: the head then trains in seconds on the
cached vectors instead of re-running the backbone on every epoch. Images stream from the
image store a batch at a time; the next batch is read while the current one is computed.
"""

import logging
import time
from pathlib import Path

import numpy as np

from stages import dataset
from stages.atomic import atomic_dir, write_json
from stages.errors import run_stage
from stages.extractor import build_extractor
from stages.features import FEATURES_DIR, INFO_FILE
from stages.params import load_params
from stages.progress import Progress
from stages.recipes import BackboneRecipe, Preprocessing

log = logging.getLogger("extract")


def extract_features(extractor, store, rows, batch_size, progress=None):
    """(len(rows), dim) float32 features of the images at `rows`, in that order; progress.update per batch."""
    features = np.empty((len(rows), extractor.dim), dtype=np.float32)
    done = 0
    for batch in store.batches(rows, batch_size):
        features[done:done + len(batch)] = extractor(batch)
        done += len(batch)
        if progress is not None:
            progress.update(len(batch))
    return features


def extract(params, prepared_dir=dataset.PREPARED_DIR, out_dir=FEATURES_DIR):
    """Write <split>.npz (features, labels, rows) for every split and info.json, atomically."""
    summary = dataset.read_summary(prepared_dir)
    records = dataset.read_manifest(prepared_dir)
    preprocessing = Preprocessing.from_artifact(summary, Path(prepared_dir) / dataset.SUMMARY_FILE)
    extractor = build_extractor(BackboneRecipe.from_params(params), preprocessing.image_size)
    batch_size = params["features"]["batch_size"]
    timings = {}
    progress = Progress(log, "extract", len(records))
    with dataset.ImageStore(Path(prepared_dir) / dataset.IMAGES_FILE) as store, atomic_dir(out_dir) as tmp:
        for split in dataset.SPLITS:
            rows, labels = dataset.split_arrays(records, split)
            start = time.perf_counter()
            features = extract_features(extractor, store, rows, batch_size, progress)
            timings[split] = time.perf_counter() - start
            log.info("%s: %d images -> %s features in %.1f s", split, len(rows), features.shape, timings[split])
            np.savez(tmp / f"{split}.npz", features=features, labels=labels, rows=rows)
        total = sum(timings.values())
        write_json(tmp / INFO_FILE, {
            "classes": summary["classes"],
            Preprocessing.RECORD_KEY: preprocessing.to_record(),
            BackboneRecipe.RECORD_KEY: extractor.recipe.to_record(),
            "weights_requested": params["features"]["weights"],
            "feature_dim": extractor.dim,
            "images": len(records), "seconds": round(total, 2),
            "images_per_second": round(len(records) / total, 1) if total else None,
        })
    return extractor


def main():
    extract(load_params())


if __name__ == "__main__":
    run_stage(main)
