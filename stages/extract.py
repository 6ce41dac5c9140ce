"""Stage `extract`: run the frozen backbone once over every prepared image and cache the features.

This is the only stage that runs the backbone: the head then trains in seconds on the
cached vectors instead of re-running the backbone on every epoch. Images stream from the
image store a batch at a time; the next batch is read while the current one is computed.
With `features.cache`, the features of every image are also kept in `.cache/features`
(stages/feature_cache.py), keyed by the image's pixel hash, so a later run computes only the
images it has not seen with the same backbone and preprocessing; the outputs are the same.
"""

import logging
import time
from pathlib import Path

import numpy as np

from stages import dataset, feature_cache
from stages.atomic import atomic_dir, write_json
from stages.errors import run_stage
from stages.extractor import build_extractor
from stages.feature_cache import FeatureCache, evict, fingerprint
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


def extract_features_cached(extractor, store, rows, keys, cache, batch_size, progress=None):
    """extract_features, with each image's features taken from `cache` under its key when there,
    and the missing ones computed (in batches of batch_size, in order) and stored. Returns
    (features, how many were computed)."""
    features = np.empty((len(rows), extractor.dim), dtype=np.float32)
    missing = []
    for i, key in enumerate(keys):
        cached = cache.load(key)
        if cached is None:
            missing.append(i)
        else:
            features[i] = cached
    if progress is not None and len(rows) > len(missing):
        progress.update(len(rows) - len(missing))
    if missing:
        features[missing] = extract_features(extractor, store, rows[missing], batch_size, progress)
        for i in missing:
            cache.store(keys[i], features[i])
    return features, len(missing)


def extract(params, prepared_dir=dataset.PREPARED_DIR, out_dir=FEATURES_DIR, cache_dir=None):
    """Write <split>.npz (features, labels, rows) for every split and info.json, atomically.

    cache_dir: the feature cache's folder; None means feature_cache.CACHE_DIR, looked up at call time.
    """
    cache_dir = feature_cache.CACHE_DIR if cache_dir is None else cache_dir
    summary = dataset.read_summary(prepared_dir)
    records = dataset.read_manifest(prepared_dir)
    preprocessing = Preprocessing.from_artifact(summary, Path(prepared_dir) / dataset.SUMMARY_FILE)
    extractor = build_extractor(BackboneRecipe.from_params(params), preprocessing.image_size)
    batch_size = params["features"]["batch_size"]
    cache = None
    if params["features"]["cache"]:
        cache = FeatureCache(cache_dir, fingerprint(extractor.recipe.to_record(), preprocessing.to_record()),
                             extractor.dim)
    keys_by_row = {record["row"]: record["sha256"] for record in records}
    timings, computed = {}, 0
    progress = Progress(log, "extract", len(records))
    with dataset.ImageStore(Path(prepared_dir) / dataset.IMAGES_FILE) as store, atomic_dir(out_dir) as tmp:
        for split in dataset.SPLITS:
            rows, labels = dataset.split_arrays(records, split)
            start = time.perf_counter()
            if cache is None:
                features = extract_features(extractor, store, rows, batch_size, progress)
            else:
                keys = [keys_by_row[int(row)] for row in rows]
                features, split_computed = extract_features_cached(extractor, store, rows, keys, cache,
                                                                   batch_size, progress)
                computed += split_computed
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
    if cache is not None:
        log.info("feature cache %s: %d images reused, %d computed", cache.folder, len(records) - computed, computed)
        if cache.damaged:
            log.warning("feature cache: %d damaged entries (wrong size or checksum, e.g. %s) were recomputed",
                        len(cache.damaged), cache.path(cache.damaged[0]))
        evict(cache_dir, params["features"]["cache_max_gb"] * 1e9, cache.folder, set(keys_by_row.values()))
    return extractor


def main():
    extract(load_params())


if __name__ == "__main__":
    run_stage(main)
