"""The frozen backbone run once over every prepared image (stage `extract`), its features cached.

This is the only stage that runs the backbone: the head then trains in seconds on the
cached vectors instead of re-running the backbone on every epoch. Images stream from the
image store a batch at a time; the next batch is read while the current one is computed.
With `features.cache`, the features of every image are also kept in `.cache/features`
(fashion/features/feature_cache.py), keyed by the image's pixel hash, so a later run computes only the
images it has not seen with the same backbone and preprocessing; the outputs are the same.
With `features.engine: ray`, the images to compute go to a pool of Ray actors instead
(fashion/features/ray_engine.py), on this machine or a cluster; the outputs are the same, in the same order.
"""

import logging
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fashion.atomic import atomic_dir, check_writable, write_json
from fashion.data import dataset
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.features.feature_cache import FeatureCache, evict, fingerprint
from fashion.features.frozen_backbone import build_extractor
from fashion.features.store import INFO_FILE, save_arrays
from fashion.models.provenance import data_record
from fashion.paths import Paths
from fashion.progress import Progress
from fashion.timings import record_timing

log = logging.getLogger(__name__)


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


class Extraction(NamedTuple):
    extractor: object  # fashion.features.frozen_backbone.Extractor: the backbone and its recipe
    summary: dict  # data/prepared/summary.json
    preprocessing: Preprocessing
    splits: dict  # {split: (rows, labels, features)}
    images: int  # in the manifest
    seconds: float  # computing (or reading from the cache)


def backbone_features(params, prepared_dir, cache_dir):
    """Every prepared image through the frozen backbone, split by split (an Extraction). Images already in the feature cache (cache_dir, with
    features.cache) are read from it, the others computed and added.

    With features.engine=ray the backbone runs on a Ray cluster (fashion/features/ray_engine.py), joined or
    started here and left again at the end; the features are the same, in the same order.
    """
    summary = dataset.read_summary(prepared_dir)
    records = dataset.read_manifest(prepared_dir)
    preprocessing = Preprocessing.from_artifact(summary, Path(prepared_dir) / dataset.SUMMARY_FILE)
    disconnect = None
    if params.features.engine == "ray":
        from fashion.features import ray_engine  # Ray is imported only for this engine

        disconnect = ray_engine.connect(params.features.ray)
    try:
        extractor, splits, seconds = _compute(params, prepared_dir, cache_dir, records, preprocessing,
                                              summary.get("locator_version"))
    finally:
        if disconnect is not None:
            disconnect()
    return Extraction(extractor, summary, preprocessing, splits, len(records), seconds)


def _compute(params, prepared_dir, cache_dir, records, preprocessing, locator_version=None):
    extractor = build_extractor(BackboneRecipe.from_params(params), preprocessing.image_size)
    batch_size, engine = params.features.batch_size, params.features.engine
    cache = None
    if params.features.cache:
        cache = FeatureCache(cache_dir, fingerprint(extractor.recipe.to_record(), preprocessing.to_record(),
                                                    locator_version), extractor.dim)
    keys_by_row = {record["row"]: record["sha256"] for record in records}
    # Every split's rows, one after the other: the backbone (or the Ray actor pool) is started once.
    splits = {split: dataset.split_arrays(records, split) for split in dataset.SPLITS}
    rows = np.concatenate([split_rows for split_rows, _ in splits.values()])
    progress = Progress(log, "extract", len(rows))
    store_path = Path(prepared_dir) / dataset.IMAGES_FILE
    with dataset.ImageStore(store_path) as store:
        if engine == "ray":
            from fashion.features import ray_engine

            def compute(rows, progress, on_batch=None):
                return ray_engine.extract_features(extractor.recipe, preprocessing.image_size, store_path, rows,
                                                   extractor.dim, params.features.ray, batch_size, progress,
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
    if cache is not None:
        log.info("feature cache %s: %d images reused, %d computed", cache.folder, len(records) - computed, computed)
        if cache.damaged:
            log.warning("feature cache: %d damaged entries (wrong size or checksum, e.g. %s) were recomputed",
                        len(cache.damaged), cache.path(cache.damaged[0]))
        evict(cache_dir, params.features.cache_max_gb * 1e9, cache.folder, set(keys_by_row.values()))
    by_split, first = {}, 0
    for split, (split_rows, labels) in splits.items():
        by_split[split] = split_rows, labels, features[first:first + len(split_rows)]
        first += len(split_rows)
    return extractor, by_split, seconds


def extract(params, paths=Paths()):
    check_writable(paths.features)
    extractor, summary, preprocessing, splits, images, seconds = backbone_features(params, paths.prepared,
                                                                                    paths.feature_cache)
    with atomic_dir(paths.features) as tmp:
        for split, (rows, labels, features) in splits.items():
            log.info("%s: %d images", split, len(rows))
            save_arrays(tmp / f"{split}.npz", features=features, labels=labels, rows=rows)
        write_json(tmp / INFO_FILE, {
            "classes": summary["classes"],
            Preprocessing.RECORD_KEY: preprocessing.to_record(),
            BackboneRecipe.RECORD_KEY: extractor.recipe.to_record(),
            "weights_requested": params.features.weights,
            "data": data_record(summary),
            "feature_dim": extractor.dim,
            "images": images,
        })
    record_timing(paths.timings("extract"), images=images, seconds=round(seconds, 2),
                  images_per_second=round(images / seconds, 1) if seconds else None)
    return extractor


