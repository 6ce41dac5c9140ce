"""Building the prepared data set (stage `prepare`): sources, decoding, the split, exclusions, the labels
confirmed on the review queue, summary."""

import logging
from collections import Counter
from pathlib import Path

from fashion.atomic import atomic_dir, check_writable, write_json
from fashion.data import dataset
from fashion.data.confirmed import read_confirmed, usable_answers
from fashion.data.decoding import close_cache, decode_into_store, open_cache
from fashion.data.exclusions import exclude_listed, read_exclusions
from fashion.data.files import skip
from fashion.data.images import ImageLimits, decode_side
from fashion.data.recipes import Preprocessing
from fashion.data.sources import confirmed_candidates, discover_fashion_mnist, discover_folder
from fashion.data.split import assign_grouped_splits, assign_groups, assign_splits
from fashion.errors import PipelineError
from fashion.paths import Paths

log = logging.getLogger(__name__)


def prepare(params, paths=Paths()):
    """Build the prepared data set in paths.prepared atomically; return its summary."""
    data, split = params.data, params.split
    check_writable(paths.prepared)
    preprocessing = Preprocessing.from_params(params)
    if data.source == "fashion_mnist":  # arrays read from IDX files, not files to decode: nothing to cache
        classes, candidates, skipped = discover_fashion_mnist(data.path)
    else:
        classes, candidates, skipped = discover_folder(data.path, decode_side(preprocessing),
                                                       ImageLimits.from_params(params))
    # Read before decoding, so that a bad exclude or labels file stops the stage at once.
    exclusions = read_exclusions(data.exclude, data.path) if data.exclude else None
    confirmed = confirmed_training(data.confirmed, classes, decode_side(preprocessing), ImageLimits.from_params(params),
                                   skipped)
    candidates += confirmed["candidates"]
    cache = open_cache(params, preprocessing, paths.decode_cache)
    log.info("found %d candidate files in %d classes", len(candidates), len(classes))
    with atomic_dir(paths.prepared) as tmp:
        writer = dataset.ImageStoreWriter(tmp / dataset.IMAGES_FILE, preprocessing.image_size)
        try:
            records, reused = decode_into_store(candidates, writer, preprocessing, skipped, cache=cache)
        finally:
            writer.close()
        if cache is not None:
            close_cache(cache, candidates, reused, data.cache_max_gb * 1e9)
        usable = Counter(r["label"] for r in records)
        for name in classes:
            if not usable[name] and data.source != "fashion_mnist":
                raise PipelineError(
                    f"class folder {Path(data.path) / name} has no usable images (every file was "
                    "skipped; see the warnings above); add readable images or remove the folder")
        unmatched = assign_groups(records, split.group)
        if split.group:
            assign_grouped_splits(records, classes, split.validation, split.test, params.seed)
        else:
            assign_splits(records, classes, split.validation, split.test, params.seed)
        records, excluded = exclude_listed(records, exclusions, data, skipped)
        for name in classes:
            if not any(r["label"] == name and r["split"] == "train" for r in records):
                raise PipelineError(f"class '{name}' has no training images left after data.exclude "
                                    f"({data.exclude}); keep some of its photos (remove their lines) or "
                                    f"remove the class folder")
        dataset.write_manifest(tmp / dataset.MANIFEST_FILE, records)
        summary = dataset.summarize(params, preprocessing, classes, records, skipped)
        summary["groups"] = {"pattern": split.group, "count": len({r["group"] for r in records}),
                             "unmatched": unmatched}
        if preprocessing.locate != "none":
            from fashion.data.locate import version

            # the face and pose models and rules that cut the boxes: the feature cache's fingerprint holds it
            summary["locator_version"] = version(preprocessing.locate)
            summary["located"] = dataset.located_counts(records, classes)
            summary["locators"] = dataset.column_counts(records, classes, "locator")
            summary["views"] = dataset.column_counts(records, classes, "view")
            log.info("data.locate %s: the neckline located in %d of %d images (by locator: %s; views: %s); the rest "
                     "keep data.region (located: false in the manifest)", preprocessing.locate,
                     summary["located"]["total"]["located"], len(records),
                     ", ".join(f"{k} {v}" for k, v in summary["locators"]["total"].items()),
                     ", ".join(f"{k} {v}" for k, v in summary["views"]["total"].items()))
        if excluded is not None:
            summary["exclude"] = excluded
        if data.confirmed:
            summary["confirmed"] = confirmed_report(confirmed, data.confirmed, records)
        write_json(tmp / dataset.SUMMARY_FILE, summary)
    log.info("prepared %d images (%s); skipped %d files (each with its reason in %s)",
             len(records), ", ".join(f"{k} {v}" for k, v in summary["totals"].items()), len(skipped),
             paths.prepared / dataset.SUMMARY_FILE)
    return summary




def confirmed_training(path, classes, min_size, limits, skipped):
    """The photos data.confirmed labels with a class, as training candidates, and what its answers hold."""
    if not path:
        return {"candidates": [], "answers": {}}
    usable, answers = usable_answers(read_confirmed(path), classes,
                                     lambda photo, kind, reason: skip(skipped, photo, kind, reason,
                                                                      warn=kind != "confirmed_not_a_class"))
    return {"candidates": confirmed_candidates(usable, min_size, limits), "answers": answers}


def confirmed_report(confirmed, path, records):
    """summary.json's account of data.confirmed: its answers by label, and how many photos joined training."""
    paths = {candidate.path for candidate in confirmed["candidates"]}
    added = sum(1 for record in records if record["path"] in paths)
    listed = sum(confirmed["answers"].values())
    log.info("data.confirmed: %d of %d answer(s) in %s added to the training split (by answer: %s)", added, listed,
             path, ", ".join(f"{k} {v}" for k, v in sorted(confirmed["answers"].items())) or "none")
    return {"file": str(path), "answers": listed, "by_answer": dict(sorted(confirmed["answers"].items())),
            "trained": added}
