"""Decoding the candidates into the image store: crop (or locate), resize, deduplicate, with the decode cache.

Threads decode in parallel, DECODE_BATCH images at a time, so memory is bounded by the batch. An image
that appears in two classes is dropped everywhere; a repeated image within a class is kept once.
"""

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fashion.data import decode_cache
from fashion.data.decode_cache import DecodeCache, file_key
from fashion.data.files import skip
from fashion.data.images import ImageError, ImageLimits, preprocess_located
from fashion.progress import Progress

log = logging.getLogger(__name__)

DECODE_BATCH = 256  # images decoded, resized and written per step: bounds memory


def open_cache(params, preprocessing, cache_dir):
    """The decode cache for these params (None with data.cache false or for Fashion-MNIST's arrays)."""
    if not params.data.cache or params.data.source == "fashion_mnist":
        return None
    limits = ImageLimits.from_params(params)
    fingerprint = decode_cache.fingerprint(preprocessing.to_record(), limits.max_pixels, limits.min_side,
                                           limits.max_aspect)
    return DecodeCache(cache_dir, fingerprint, preprocessing.image_size)


def close_cache(cache, candidates, reused, max_bytes):
    """Log what the cache gave and drop the oldest entries past max_bytes, keeping these candidates'."""
    log.info("decode cache %s: %d files reused, %d decoded", cache.folder, reused, len(candidates) - reused)
    if cache.damaged:
        log.warning("decode cache: %d damaged entries (wrong size or checksum, e.g. %s) were decoded again",
                    len(cache.damaged), cache.path(cache.damaged[0]))
    decode_cache.evict(cache.root, max_bytes, cache.folder, {file_key(c.file) for c in candidates})


def _decode(candidate, preprocessing, cache=None):
    """(image, sha256 of the whole decoded image, its fashion.data.locate.Location, error, whether it came from the cache)."""
    key = file_key(candidate.file) if cache is not None and candidate.file is not None else None
    if key is not None and (entry := cache.load(key)) is not None:
        return *entry, None, True
    try:
        rgb = candidate.load()
    except ImageError as err:  # not cached: a repaired file must be decoded again
        return None, None, None, str(err), False
    digest = hashlib.sha256(np.ascontiguousarray(rgb).tobytes() + str(rgb.shape).encode()).hexdigest()
    image, location = preprocess_located(rgb, preprocessing)
    # Stored only if the file did not change while it was decoded, so an entry always matches its key.
    if key is not None and file_key(candidate.file) == key:
        cache.store(key, image, digest, location)
    return image, digest, location, None, False


def decode_into_store(candidates, writer, preprocessing, skipped, workers=None, cache=None):
    """Decode, crop to the region, resize and append every usable candidate; drop duplicates and
    label conflicts (judged on the whole decoded image). With a DecodeCache, files decoded by an
    earlier run are taken from it.

    Returns the kept records, each with its row in the store, and how many files came from the
    cache. An image that appears in two classes is dropped everywhere (its label is unknowable);
    a repeated image within a class is kept once, so identical images can never land in two splits.
    """
    first_by_hash, conflicted, records, reused = {}, set(), [], 0
    progress = Progress(log, "prepare", len(candidates), unit="files")
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        # Pillow, OpenCV and hashlib release the GIL, so threads decode in parallel.
        for start in range(0, len(candidates), DECODE_BATCH):
            batch = candidates[start:start + DECODE_BATCH]
            kept_images = []
            for candidate, (image, digest, location, error, from_cache) in zip(
                    batch, pool.map(lambda c: _decode(c, preprocessing, cache), batch)):
                reused += from_cache
                if error:
                    skip(skipped, candidate.path, "bad_image", error)
                    continue
                first = first_by_hash.get(digest)
                if first is None:
                    record = {"path": candidate.path, "label": candidate.label, "sha256": digest,
                              "fixed_split": candidate.fixed_split, **location_columns(location)}
                    first_by_hash[digest] = record
                    records.append(record)
                    kept_images.append(image)
                elif first["label"] == candidate.label:
                    skip(skipped, candidate.path, "duplicate", f"identical to {first['path']}; kept that one")
                elif candidate.confirmed:  # data.path's photo keeps its label and split: the test split stays
                    skip(skipped, candidate.path, "duplicate", f"confirmed as {candidate.label!r} on the review queue, "
                         f"but identical to {first['path']} of data.path, labelled {first['label']!r}; kept that one")
                else:
                    conflicted.add(digest)
                    skip(skipped, candidate.path, "label_conflict",
                          f"identical to {first['path']} but labelled {candidate.label!r}, not "
                          f"{first['label']!r}; both dropped: fix the label")
            if kept_images:
                rows = writer.append(np.stack(kept_images))
                for record, row in zip(records[-len(kept_images):], rows):
                    record["row"] = row
            progress.update(min(DECODE_BATCH, len(candidates) - start))
    for record in records:
        if record["sha256"] in conflicted:  # its row stays in the store, unused
            skip(skipped, record["path"], "label_conflict", "identical image found in another class; dropped")
    return [record for record in records if record["sha256"] not in conflicted], reused


def location_columns(location):
    """The manifest's columns for where an image's input was cut: located (true, false, or empty with
    data.locate none), the locator that placed the box and the view (empty when unknown or not looked for),
    and the box as fractions of the photo."""
    record = location.to_record()
    located = "" if record["located"] is None else str(record["located"]).lower()
    return {"located": located, "locator": record["locator"] or "", "view": record["view"] or "",
            **{f"box_{side}": value for side, value in record["box"].items()}}
