"""Stage `extract`: run the frozen backbone once over every prepared image and cache the features.

This is the only stage that runs the backbone: the head then trains in seconds on the
cached vectors instead of re-running the backbone on every epoch. Images stream from the
image store a batch at a time; the next batch is read while the current one is computed.
With `features.cache`, the features of every image are also kept in `.cache/features`
(stages/feature_cache.py), keyed by the image's pixel hash, so a later run computes only the
images it has not seen with the same backbone and preprocessing; the outputs are the same.
With `features.engine: ray`, the images to compute go to a pool of Ray actors instead
(stages/ray_engine.py), on this machine or a cluster; the outputs are the same, in the same order.
"""

import logging
import time
from pathlib import Path

import numpy as np

from stages import dataset, feature_cache
from stages.atomic import atomic_dir, check_writable, write_json
from stages.errors import run_stage
from stages.extractor import build_extractor
from stages.feature_cache import FeatureCache, evict, fingerprint
from stages.features import FEATURES_DIR, INFO_FILE
from stages.params import load_params
from stages.progress import Progress
from stages.recipes import BackboneRecipe, Preprocessing

log = logging.getLogger("extract")


def extract_features(extractor, store, rows, batch_size, progress=None, on_batch=None):
    """(len(rows), dim) float32 features of the images at `rows`, in that order; progress.update per batch,
    and on_batch(positions in rows, their features) as each batch is done.

    Every batch goes through the backbone at the full batch_size (a short one padded with blank images):
    on some CPUs the kernels chosen for another batch shape differ in the last bits, and an image's features
    must not depend on which images were computed with it (the cache recomputes a few at a time)."""
    features = np.empty((len(rows), extractor.dim), dtype=np.float32)
    done = 0
    for batch in store.batches(rows, batch_size):
        padded = np.concatenate([batch, np.zeros((batch_size - len(batch), *batch.shape[1:]), batch.dtype)])
        features[done:done + len(batch)] = extractor(padded)[:len(batch)]
        if on_batch is not None:
            on_batch(np.arange(done, done + len(batch)), features[done:done + len(batch)])
        done += len(batch)
        if progress is not None:
            progress.update(len(batch))
    return features


def extract_features_cached(compute, rows, keys, cache, dim, progress=None):
    """The features of the images at `rows`, each taken from `cache` under its key when there; the
    missing ones computed by `compute(rows, progress, on_batch)` (in order) and stored batch by batch, as
    on_batch receives them, so that a run killed halfway keeps what it computed. Returns (features, how
    many were computed)."""
    features = np.empty((len(rows), dim), dtype=np.float32)
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
        missing = np.asarray(missing)

        def store_batch(positions, computed):
            for position, vector in zip(positions, computed):
                cache.store(keys[missing[position]], vector)

        features[missing] = compute(rows[missing], progress, store_batch)
    return features, len(missing)


def extract(params, prepared_dir=dataset.PREPARED_DIR, out_dir=FEATURES_DIR, cache_dir=None):
    """Write <split>.npz (features, labels, rows) for every split and info.json, atomically.

    cache_dir: the feature cache's folder; None means feature_cache.CACHE_DIR, looked up at call time.
    With features.engine=ray the backbone runs on a Ray cluster (stages/ray_engine.py), joined or
    started here and left again at the end; the outputs are the same.
    """
    check_writable(out_dir)
    cache_dir = feature_cache.CACHE_DIR if cache_dir is None else cache_dir
    summary = dataset.read_summary(prepared_dir)
    records = dataset.read_manifest(prepared_dir)
    preprocessing = Preprocessing.from_artifact(summary, Path(prepared_dir) / dataset.SUMMARY_FILE)
    engine = params["features"]["engine"]
    disconnect = None
    if engine == "ray":
        from stages import ray_engine  # Ray is imported only for this engine

        disconnect = ray_engine.connect(params["features"]["ray"])
    try:
        return _extract(params, prepared_dir, out_dir, cache_dir, summary, records, preprocessing)
    finally:
        if disconnect is not None:
            disconnect()


def _extract(params, prepared_dir, out_dir, cache_dir, summary, records, preprocessing):
    extractor = build_extractor(BackboneRecipe.from_params(params), preprocessing.image_size)
    batch_size, engine = params["features"]["batch_size"], params["features"]["engine"]
    cache = None
    if params["features"]["cache"]:
        cache = FeatureCache(cache_dir, fingerprint(extractor.recipe.to_record(), preprocessing.to_record()),
                             extractor.dim)
    keys_by_row = {record["row"]: record["sha256"] for record in records}
    # Every split's rows, one after the other: the backbone (or the Ray actor pool) is started once.
    splits = {split: dataset.split_arrays(records, split) for split in dataset.SPLITS}
    rows = np.concatenate([split_rows for split_rows, _ in splits.values()])
    progress = Progress(log, "extract", len(rows))
    store_path = Path(prepared_dir) / dataset.IMAGES_FILE
    with dataset.ImageStore(store_path) as store:
        if engine == "ray":
            from stages import ray_engine

            def compute(rows, progress, on_batch=None):
                return ray_engine.extract_features(extractor.recipe, preprocessing.image_size, store_path, rows,
                                                   extractor.dim, params["features"]["ray"], batch_size, progress,
                                                   on_batch)
        else:
            def compute(rows, progress, on_batch=None):
                return extract_features(extractor, store, rows, batch_size, progress, on_batch)

        start = time.perf_counter()
        if cache is None:
            features, computed = compute(rows, progress), len(rows)
        else:
            keys = [keys_by_row[int(row)] for row in rows]
            features, computed = extract_features_cached(compute, rows, keys, cache, extractor.dim, progress)
        seconds = time.perf_counter() - start
    log.info("%d images -> %d features each in %.1f s (engine %s)", len(rows), extractor.dim, seconds, engine)

    with atomic_dir(out_dir) as tmp:
        first = 0
        for split, (split_rows, labels) in splits.items():
            log.info("%s: %d images", split, len(split_rows))
            np.savez(tmp / f"{split}.npz", features=features[first:first + len(split_rows)], labels=labels,
                     rows=split_rows)
            first += len(split_rows)
        write_json(tmp / INFO_FILE, {
            "classes": summary["classes"],
            Preprocessing.RECORD_KEY: preprocessing.to_record(),
            BackboneRecipe.RECORD_KEY: extractor.recipe.to_record(),
            "weights_requested": params["features"]["weights"],
            "feature_dim": extractor.dim,
            "images": len(records), "seconds": round(seconds, 2),
            "images_per_second": round(len(records) / seconds, 1) if seconds else None,
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
