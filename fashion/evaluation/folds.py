"""The train and validation splits pooled, and the folds drawn over them: what cross-validation (stage
`crossval`) and the thresholds chosen on its out-of-fold probabilities (stage `decide`) share, so that both
see the same rows in the same order and the same folds.
"""

from pathlib import Path

import numpy as np

from fashion.data import dataset
from fashion.errors import PipelineError, outdated
from fashion.features.store import load_split_rows


def pooled_features(features_dir, prepared_dir):
    """(features, labels, groups) of the train and validation splits together; groups from the manifest."""
    parts = [load_split_rows(features_dir, split) for split in ("train", "validation")]
    features = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    rows = np.concatenate([p[2] for p in parts])
    group_of_row = {record["row"]: record["group"] for record in dataset.read_manifest(prepared_dir)}
    missing = [int(row) for row in rows if int(row) not in group_of_row]
    if missing:
        raise outdated(Path(features_dir), f"has features of {len(missing)} image(s) the manifest does not know")
    return features, labels, np.array([group_of_row[int(row)] for row in rows])


def pooled_rows(features_dir):
    """The image-store rows of pooled_features' rows, in the same order."""
    return np.concatenate([load_split_rows(features_dir, split)[2] for split in ("train", "validation")])


def pooled_paths(features_dir, prepared_dir):
    """The manifest paths of pooled_features' rows, in the same order."""
    path_of_row = {record["row"]: record["path"] for record in dataset.read_manifest(prepared_dir)}
    return [path_of_row[int(row)] for row in pooled_rows(features_dir)]


def folds(labels, groups, n_folds, repeats, seed):
    """Yield (repeat, fold, train indices, held-out indices): stratified, and grouped by item when groups
    repeat (every photo of an item on one side), each repeat with its own shuffle."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    grouped = len(set(groups)) < len(groups)
    for repeat in range(repeats):
        splitter = (StratifiedGroupKFold if grouped else StratifiedKFold)(
            n_splits=n_folds, shuffle=True, random_state=seed + repeat)
        for fold, (train, held) in enumerate(splitter.split(labels, labels, groups if grouped else None)):
            yield repeat, fold, train, held


def fold_jobs(labels, groups, settings, seed):
    """[(repeat, fold, train indices, held-out indices, the fold's seed)] of crossval settings `settings`."""
    return [(repeat, fold, train, held, (seed + 1000 * repeat + fold) % 2**32)
            for repeat, fold, train, held in folds(labels, groups, settings.folds, settings.repeats, seed)]


def early_stopping_split(labels, groups, share, seed):
    """(fit, stop) positions in a fold's training part: `share` of it kept apart for early stopping."""
    from sklearn.model_selection import StratifiedGroupKFold

    parts = max(2, round(1 / share))
    if len(set(groups)) < parts:
        raise PipelineError(f"a fold's training part has {len(set(groups))} photo(s) (items, with split.group); "
                            f"crossval.validation={share} keeps 1 in {parts} of them apart for early stopping, so it "
                            f"needs at least {parts}. Lower crossval.folds, raise crossval.validation or add photos")
    splitter = StratifiedGroupKFold(n_splits=parts, shuffle=True, random_state=seed)
    fit, stop = next(splitter.split(labels, labels, groups))
    return fit, stop
