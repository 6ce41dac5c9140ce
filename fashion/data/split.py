"""How the train / validation / test split is drawn: stratified by class, seeded, and grouped by item.

Photos of one item (split.group: a pattern on the file name) land in one split, so no item leaks
from training into validation or test. A split given by the source (a test/ folder, Fashion-MNIST's
t10k) is kept as it is.
"""

import logging
import re
from pathlib import Path

import numpy as np

from fashion.errors import PipelineError

log = logging.getLogger(__name__)


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
