"""Stage `prepare`: find, validate, decode and resize the images; split them without leakage.

Reads a folder with one sub-folder per class (the generated default data set is such a
folder too) or Fashion-MNIST IDX files, and writes `data/prepared/` (see stages/dataset.py).
Unusable files are skipped with a reason; problems that make the data set unusable as a
whole stop the stage with a message saying what to fix, and leave no output behind.
"""

import hashlib
import logging
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from stages import dataset, decode_cache
from stages.atomic import atomic_dir, check_writable, write_json
from stages.decode_cache import DecodeCache, file_key
from stages.errors import PipelineError, run_stage
from stages.exclusions import read_exclusions
from stages.idx import FASHION_MNIST_CLASSES, read_fashion_mnist
from stages.images import (SUPPORTED_EXTENSIONS, ImageError, ImageLimits, decode_rgb, decode_side, preprocess_located,
                           skip, walk_image_files)
from stages.params import load_params
from stages.progress import Progress
from stages.recipes import Preprocessing

log = logging.getLogger("prepare")

DECODE_BATCH = 256  # images decoded, resized and written per step: bounds memory


@dataclass
class Candidate:
    """An image to try: where it comes from, its class, and how to decode it."""
    path: str                                 # as shown to users: relative to data.path
    label: str
    load: Callable[[], np.ndarray]            # returns HxWx3 uint8 RGB, or raises ImageError
    fixed_split: str | None = None            # a split given by the source (Fashion-MNIST's t10k, a test/ folder)
    file: Path | None = None                  # the file it is decoded from (None: arrays, not files), for the decode cache


# --- sources -------------------------------------------------------------------------

# A data set already split into folders: train/ plus validation/ and/or test/, each with class
# sub-folders. What the given folders become (the rest of the training folder is split as usual):
SPLIT_FOLDERS = {
    frozenset({"train", "test"}): {"test": "test"},
    # A single held-out folder is the test split; validation for early stopping comes from train/.
    frozenset({"train", "validation"}): {"validation": "test"},
    frozenset({"train", "validation", "test"}): {"validation": "validation", "test": "test"},
}


def discover_folder(root, min_size, limits):
    """Class names and candidates from a folder with one sub-folder per class, or from a folder
    already split into train/ and validation/ and/or test/ folders of class sub-folders.

    JPEGs are decoded at a reduced scale when they are larger than `min_size` on both sides."""
    root = Path(root)
    if not root.exists():
        raise PipelineError(f"data.path {root} does not exist; point data.path at a folder with one "
                            "sub-folder per class (dvc exp run -S data.path=/your/photos)")
    if not root.is_dir():
        raise PipelineError(f"data.path {root} is a file, not a folder; it must hold one sub-folder per class")
    skipped = []
    top = _sub_folders(root, root, skipped)
    layout = SPLIT_FOLDERS.get(frozenset(d.name for d in top))
    if layout is None:
        if len(top) < 2:
            found = ", ".join(d.name for d in top) or "none"
            raise PipelineError(f"{root} has {len(top)} class folder(s) ({found}); a classifier needs at "
                                "least two classes: put each class's images in its own sub-folder of data.path")
        return [d.name for d in top], _class_candidates(root, top, min_size, limits, skipped), skipped

    # Given held-out folders first, so that a training image identical to a test image is the one dropped.
    order = sorted(top, key=lambda d: ("test", "validation", "train").index(d.name))
    by_split = {d.name: _sub_folders(root, d, skipped) for d in order}
    classes = [d.name for d in by_split["train"]]
    if len(classes) < 2:
        raise PipelineError(f"{root / 'train'} has {len(classes)} class folder(s); a classifier needs at least "
                            "two classes: put each class's training images in its own sub-folder of train/")
    candidates = []
    for split_dir in order:
        extra = sorted({d.name for d in by_split[split_dir.name]} - set(classes))
        if extra:
            raise PipelineError(f"{split_dir} has class folder(s) {', '.join(extra)} that {root / 'train'} does "
                                "not have; the model cannot learn a class it never trains on: add training images "
                                "or remove those folders")
        for candidate in _class_candidates(root, by_split[split_dir.name], min_size, limits, skipped):
            candidate.fixed_split = layout.get(split_dir.name)
            candidates.append(candidate)
    log.info("data.path is split into folders: %s", ", ".join(
        f"{name}/ -> {layout.get(name, 'train and validation')}" for name in by_split))
    return classes, candidates, skipped


def _sub_folders(root, folder, skipped):
    """The visible sub-folders of folder, sorted; files there are skipped with a reason."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            skip(skipped, entry.relative_to(root), "hidden", "hidden file or folder")
        elif entry.is_dir():
            found.append(entry)
        else:
            skip(skipped, entry.relative_to(root), "outside_class_folder",
                  "file is not inside a class folder; move it into the folder of its class")
    return found


def _class_candidates(root, class_dirs, min_size, limits, skipped):
    candidates = []
    for class_dir in class_dirs:
        files = list(walk_image_files(root, class_dir, skipped))
        if not files:
            raise PipelineError(f"class folder {class_dir} has no image files; add images "
                                f"({', '.join(SUPPORTED_EXTENSIONS)}) or remove the folder")
        for file in files:
            candidates.append(Candidate(
                path=file.relative_to(root).as_posix(), label=class_dir.name, file=file,
                load=lambda file=file: decode_rgb(file, limits.max_pixels, min_size, limits.min_side, limits.max_aspect)))
    return candidates


def discover_fashion_mnist(folder):
    """Candidates from the IDX files; t10k is the official test split and comes first,
    so that a training image identical to a test image is the one dropped."""
    parts = read_fashion_mnist(folder)
    candidates = []
    for part in ("t10k", "train"):
        images, labels, file_name = parts[part]
        for index, (image, label) in enumerate(zip(images, labels)):
            candidates.append(Candidate(
                path=f"{file_name}#{index}", label=FASHION_MNIST_CLASSES[label],
                load=lambda image=image: np.repeat(image[:, :, None], 3, axis=2),
                fixed_split="test" if part == "t10k" else None))
    return list(FASHION_MNIST_CLASSES), candidates, []


# --- decoding, deduplication and the image store ---------------------------------------

def _decode(candidate, preprocessing, cache=None):
    """(image, sha256 of the whole decoded image, its stages.locate.Location, error, whether it came from the cache)."""
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
    data.locate none) and the box as fractions of the photo."""
    record = location.to_record()
    located = "" if record["located"] is None else str(record["located"]).lower()
    return {"located": located, **{f"box_{side}": value for side, value in record["box"].items()}}


# --- the split -----------------------------------------------------------------------

def assign_groups(records, pattern):
    """Give each record the item it shows: the first group of `pattern` searched in its file name.

    A file whose name does not match (and every file when pattern is None) is an item of its own.
    Returns how many names did not match.
    """
    unmatched = 0
    compiled = re.compile(pattern) if pattern else None
    for record in records:
        found = compiled.search(Path(record["path"]).name) if compiled else None
        if compiled and found is None:
            unmatched += 1
        record["group"] = found.group(1) if found else record["path"]
    if unmatched:
        log.warning("split.group: %d file name(s) do not match %r; each is an item of its own", unmatched, pattern)
    return unmatched


def assign_grouped_splits(records, classes, validation, test, seed):
    """Give each record a split so that all photos of one item (its group) land in the same split,
    stratified by class as far as the groups allow (scikit-learn's StratifiedGroupKFold), seeded.

    The test split is one fold of round(1 / test) folds, the validation split one fold of the rest;
    records with a fixed split keep it, and the splits the source gives are not carved.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    fixed = {r["fixed_split"] for r in records if r["fixed_split"]}
    pool = sorted((r for r in records if not r["fixed_split"]), key=lambda r: r["path"])
    labels = np.array([classes.index(r["label"]) for r in pool])
    groups = np.array([r["group"] for r in pool])
    remaining, share_left = np.arange(len(pool)), 1.0
    for split, fraction in (("test", test), ("validation", validation)):
        if split in fixed:
            continue
        folds = max(2, round(share_left / fraction))
        if len(set(groups[remaining])) < folds:
            raise PipelineError(
                f"split.group: only {len(set(groups[remaining]))} items (groups) to split into {split} and the rest; "
                f"a {fraction:g} {split} split needs at least {folds}. Add photos, or set split.group to null")
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        _, held = next(splitter.split(remaining, labels[remaining], groups[remaining]))
        for index in remaining[held]:
            pool[index]["split"] = split
        remaining = np.delete(remaining, held)
        share_left -= share_left / folds
    for index in remaining:
        pool[index]["split"] = "train"
    for record in records:
        if record["fixed_split"]:
            record["split"] = record["fixed_split"]
        record["label_index"] = classes.index(record["label"])
    for name in classes:
        present = {r["split"] for r in records if r["label"] == name}
        if "train" not in present:
            raise PipelineError(f"class '{name}' has no training images after grouping by split.group (all its "
                                "items went to validation or test); add photos of more items to it")
        for split in ("validation", "test"):
            if split not in present:
                log.warning("class '%s' has no %s images: its items are too few to give every split one", name, split)


def assign_splits(records, classes, validation, test, seed):
    """Give each record a split: stratified per class, seeded, at least one image per split.

    Records with a fixed split (an official test set, a test/ or validation/ folder) keep it; the
    splits the source does not give are carved from the rest of each class.
    """
    fixed = {r["fixed_split"] for r in records if r["fixed_split"]}
    for class_index, name in enumerate(classes):
        pool = sorted((r for r in records if r["label"] == name and not r["fixed_split"]),
                      key=lambda r: r["path"])
        n = len(pool)
        n_test = 0 if "test" in fixed else max(1, round(n * test))
        n_val = 0 if "validation" in fixed else max(1, round(n * validation))
        if n - n_test - n_val < 1:
            needed = 1 + (n_test > 0) + (n_val > 0)
            where = "training images" if fixed else "usable image(s)"
            raise PipelineError(
                f"class '{name}' has {n} {where}; each class needs at least {needed} "
                "(one per split) and many more to learn from. Add images to its folder or remove the folder")
        order = np.random.default_rng([seed, class_index]).permutation(n)
        for position, index in enumerate(order):
            pool[index]["split"] = ("test" if position < n_test else
                                    "validation" if position < n_test + n_val else "train")
    for record in records:
        if record["fixed_split"]:
            record["split"] = record["fixed_split"]
        record["label_index"] = classes.index(record["label"])


# --- the exclude file -------------------------------------------------------------------------

def exclude_listed(records, found, data, skipped):
    """Drop the photos data.exclude lists from training and validation (and from test with data.exclude_test).

    Runs after the split, so that excluding photos never moves another photo to another split: the test
    split stays the same photos, and scores before and after stay comparable. Returns (the records kept,
    a report for summary.json). Listed photos of the test split are kept unless data.exclude_test, and
    reported either way; lines that name no photo are reported with a warning.
    """
    if found is None:
        return records, None
    file_hashes = {}
    if found.hashes and data["source"] != "fashion_mnist":
        # The digest `sha256sum` prints: of the file's bytes (the manifest's sha256 is of the decoded pixels).
        for record in records:
            with open(Path(data["path"]) / record["path"], "rb") as handle:
                file_hashes[record["path"]] = hashlib.file_digest(handle, "sha256").hexdigest()
    matched_paths, matched_hashes, kept, test_listed = set(), set(), [], []
    for record in records:
        digests = {record["sha256"], file_hashes.get(record["path"])} & found.hashes
        if record["path"] not in found.paths and not digests:
            kept.append(record)
            continue
        matched_hashes |= digests
        if record["path"] in found.paths:
            matched_paths.add(record["path"])
        if record["split"] == "test":
            test_listed.append(record["path"])
            if not data["exclude_test"]:
                kept.append(record)
                continue
        # Recorded without a warning per photo: the user listed them; the count is logged below.
        skipped.append({"path": record["path"], "kind": "excluded",
                        "reason": f"listed in data.exclude ({data['exclude']})"})
    not_found = sorted(found.paths - matched_paths) + sorted(found.hashes - matched_hashes)
    for problem in found.ignored:
        log.warning("data.exclude: %s; it names no photo and is ignored", problem)
    if not_found:
        log.warning("data.exclude: %d line(s) of %s name no photo of data.path (e.g. %r); moved or deleted "
                    "photos can be removed from it", len(not_found), data["exclude"], not_found[0])
    if test_listed:
        if data["exclude_test"]:
            log.warning("data.exclude: %d photo(s) of the test split dropped (data.exclude_test: true); the test "
                        "scores are not comparable with runs that kept them", len(test_listed))
        else:
            log.warning("data.exclude: %d photo(s) of the test split are listed and KEPT, so that the test split stays "
                        "the same photos (e.g. %s); data.exclude_test: true drops them too", len(test_listed),
                        test_listed[0])
    report = {"file": str(data["exclude"]), "listed": len(found), "excluded": len(records) - len(kept),
              "test_listed": sorted(test_listed), "test_kept": not data["exclude_test"],
              "not_found": not_found, "ignored": found.ignored}
    log.info("data.exclude: %d photo(s) excluded, listed in %s", report["excluded"], data["exclude"])
    return kept, report


def summarize(params, preprocessing, classes, records, skipped):
    counts = {name: {split: 0 for split in dataset.SPLITS} for name in classes}
    for record in records:
        counts[record["label"]][record["split"]] += 1
    for per_split in counts.values():
        per_split["total"] = sum(per_split.values())
    totals = {split: sum(c[split] for c in counts.values()) for split in (*dataset.SPLITS, "total")}
    return {
        "source": params["data"]["source"],
        "path": params["data"]["path"],
        Preprocessing.RECORD_KEY: preprocessing.to_record(),
        "classes": classes,
        "counts": counts,
        "totals": totals,
        "skipped_count": len(skipped),
        "skipped_by_kind": dict(sorted(Counter(s["kind"] for s in skipped).items())),
        "skipped": skipped,
    }


def located_counts(records, classes):
    """{class or 'total': {located, not_located}}: how many images a face anchored (data.locate: face)."""
    counts = {name: {"located": 0, "not_located": 0} for name in (*classes, "total")}
    for record in records:
        column = "located" if record["located"] == "true" else "not_located"
        counts[record["label"]][column] += 1
        counts["total"][column] += 1
    return counts


def prepare(params, out_dir=dataset.PREPARED_DIR, cache_dir=None):
    """Build the prepared data set in out_dir atomically; return its summary.

    cache_dir: the decode cache's folder; None means decode_cache.CACHE_DIR, looked up at call time.
    """
    data, split = params["data"], params["split"]
    check_writable(out_dir)
    cache_dir = decode_cache.CACHE_DIR if cache_dir is None else cache_dir
    preprocessing = Preprocessing.from_params(params)
    cache = None
    if data["source"] == "fashion_mnist":  # arrays read from IDX files, not files to decode: nothing to cache
        classes, candidates, skipped = discover_fashion_mnist(data["path"])
    else:
        min_size = decode_side(preprocessing)
        limits = ImageLimits.from_params(params)
        classes, candidates, skipped = discover_folder(data["path"], min_size, limits)
        if data["cache"]:
            fingerprint = decode_cache.fingerprint(preprocessing.to_record(), limits.max_pixels, limits.min_side,
                                                   limits.max_aspect)
            cache = DecodeCache(cache_dir, fingerprint, preprocessing.image_size)
    log.info("found %d candidate files in %d classes", len(candidates), len(classes))
    # Read before decoding, so that a bad exclude file stops the stage at once.
    exclusions = read_exclusions(data["exclude"], data["path"]) if data["exclude"] else None
    with atomic_dir(out_dir) as tmp:
        writer = dataset.ImageStoreWriter(tmp / dataset.IMAGES_FILE, preprocessing.image_size)
        try:
            records, reused = decode_into_store(candidates, writer, preprocessing, skipped, cache=cache)
        finally:
            writer.close()
        if cache is not None:
            log.info("decode cache %s: %d files reused, %d decoded", cache.folder, reused, len(candidates) - reused)
            if cache.damaged:
                log.warning("decode cache: %d damaged entries (wrong size or checksum, e.g. %s) were decoded again",
                            len(cache.damaged), cache.path(cache.damaged[0]))
            keep = {file_key(c.file) for c in candidates}
            decode_cache.evict(cache_dir, data["cache_max_gb"] * 1e9, cache.folder, keep)
        usable = Counter(r["label"] for r in records)
        for name in classes:
            if not usable[name] and data["source"] != "fashion_mnist":
                raise PipelineError(
                    f"class folder {Path(data['path']) / name} has no usable images (every file was "
                    "skipped; see the warnings above); add readable images or remove the folder")
        unmatched = assign_groups(records, split["group"])
        if split["group"]:
            assign_grouped_splits(records, classes, split["validation"], split["test"], params["seed"])
        else:
            assign_splits(records, classes, split["validation"], split["test"], params["seed"])
        records, excluded = exclude_listed(records, exclusions, data, skipped)
        for name in classes:
            if not any(r["label"] == name and r["split"] == "train" for r in records):
                raise PipelineError(f"class '{name}' has no training images left after data.exclude "
                                    f"({data['exclude']}); keep some of its photos (remove their lines) or "
                                    f"remove the class folder")
        dataset.write_manifest(tmp / dataset.MANIFEST_FILE, records)
        summary = summarize(params, preprocessing, classes, records, skipped)
        summary["groups"] = {"pattern": split["group"], "count": len({r["group"] for r in records}),
                             "unmatched": unmatched}
        if preprocessing.locate != "none":
            summary["located"] = located_counts(records, classes)
            log.info("data.locate %s: a face located the neckline in %d of %d images; the rest keep data.region "
                     "(located: false in the manifest)", preprocessing.locate, summary["located"]["total"]["located"],
                     len(records))
        if excluded is not None:
            summary["exclude"] = excluded
        write_json(tmp / dataset.SUMMARY_FILE, summary)
    log.info("prepared %d images (%s); skipped %d files",
             len(records), ", ".join(f"{k} {v}" for k, v in summary["totals"].items()), len(skipped))
    return summary


def main():
    prepare(load_params())


if __name__ == "__main__":
    run_stage(main)
