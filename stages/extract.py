"""Stage `extract`: run the frozen backbone once over every prepared image and cache the features.

This is the only stage that runs the backbone: the head then trains in seconds on the
cached vectors instead of re-running the backbone on every epoch. Images stream from the
image store a batch at a time; the next batch is read while the current one is computed.
"""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from stages import backbones, dataset
from stages.atomic import atomic_dir, write_json
from stages.errors import PipelineError, run_stage
from stages.params import load_params
from stages.training import make_reproducible

log = logging.getLogger("extract")

FEATURES_DIR = Path("data/features")
INFO_FILE = "info.json"


def prefetched(batches):
    """Yield from `batches` while a background thread already reads the next item."""
    iterator = iter(batches)
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(next, iterator, None)
        while (batch := pending.result()) is not None:
            pending = reader.submit(next, iterator, None)
            yield batch


def extract_features(extractor, store, rows, batch_size):
    """(len(rows), dim) float32 features of the images at `rows`, in that order."""
    features = np.empty((len(rows), extractor.dim), dtype=np.float32)
    done = 0
    for batch in prefetched(store.batches(rows, batch_size)):
        features[done:done + len(batch)] = extractor(batch)
        done += len(batch)
    return features


def build_extractor(params, image_size):
    f = params["features"]
    return backbones.build_extractor(params["model"], image_size, weights=f["weights"], alpha=f["alpha"],
                                     precision=f["precision"], mirror=f["mirror"])


def extract(params, prepared_dir=dataset.PREPARED_DIR, out_dir=FEATURES_DIR):
    """Write <split>.npz (features, labels, rows) for every split and info.json, atomically."""
    summary = dataset.read_summary(prepared_dir)
    records = dataset.read_manifest(prepared_dir)
    make_reproducible(params["seed"])  # with weights: none the random backbone comes from the seed
    extractor = build_extractor(params, summary["image_size"])
    batch_size = params["features"]["batch_size"]
    timings = {}
    with dataset.ImageStore(Path(prepared_dir) / dataset.IMAGES_FILE) as store, atomic_dir(out_dir) as tmp:
        for split in dataset.SPLITS:
            rows, labels = dataset.split_arrays(records, split)
            start = time.perf_counter()
            features = extract_features(extractor, store, rows, batch_size)
            timings[split] = time.perf_counter() - start
            log.info("%s: %d images -> %s features in %.1f s", split, len(rows), features.shape, timings[split])
            np.savez(tmp / f"{split}.npz", features=features, labels=labels, rows=rows)
        total = sum(timings.values())
        write_json(tmp / INFO_FILE, {
            "model": params["model"], "weights": params["features"]["weights"],
            "weights_used": extractor.weights_used,
            "alpha": params["features"]["alpha"], "precision": params["features"]["precision"],
            "mirror": params["features"]["mirror"],
            "image_size": summary["image_size"], "resize": summary["resize"], "region": summary["region"],
            "seed": params["seed"],
            "feature_dim": extractor.dim, "classes": summary["classes"],
            "images": len(records), "seconds": round(total, 2),
            "images_per_second": round(len(records) / total, 1) if total else None,
        })
    return extractor


def read_info(features_dir=FEATURES_DIR):
    path = Path(features_dir) / INFO_FILE
    if not path.is_file():
        raise PipelineError(f"{path} not found; run `dvc repro` (the extract stage) first")
    return json.loads(path.read_text())


def load_split(features_dir, split):
    """(features, labels) of one split from an extract (or resample) output folder."""
    path = Path(features_dir) / f"{split}.npz"
    if not path.is_file():
        raise PipelineError(f"{path} not found; run `dvc repro` (the extract stage) first")
    with np.load(path, allow_pickle=False) as arrays:
        return arrays["features"], arrays["labels"]


def main():
    extract(load_params())


if __name__ == "__main__":
    run_stage(main)
