"""SMOTE on feature vectors: the resample stage balances the training features with it, and
cross-validation balances each training fold with it (never a held-out fold)."""

import logging

import numpy as np

from fashion.atomic import atomic_dir, check_writable, write_json
from fashion.errors import PipelineError
from fashion.features.store import load_split, read_info, save_arrays
from fashion.paths import Paths

log = logging.getLogger(__name__)


def smote_resample(features, labels, k_neighbors, seed, classes):
    """SMOTE every minority class up to the majority count; return (features, labels, report).

    SMOTE interpolates between a sample and one of its k nearest same-class neighbours, so a
    class needs more than k samples. When the smallest class has k or fewer, k is lowered to
    (its size - 1) for this run and the report says so; a class of one sample cannot be
    interpolated at all and is an error.
    """
    from imblearn.over_sampling import SMOTE

    counts = np.bincount(labels, minlength=len(classes))
    smallest_class = int(np.argmin(counts))
    smallest = int(counts[smallest_class])
    report = {"k_neighbors_requested": k_neighbors, "k_neighbors_used": k_neighbors, "warning": None}
    if smallest < 2:
        raise PipelineError(
            f"class '{classes[smallest_class]}' has {smallest} training image(s); SMOTE needs at least two "
            "per class. Add images to that class, or set smote.enabled=false")
    if smallest <= k_neighbors:
        report["k_neighbors_used"] = smallest - 1
        report["warning"] = (f"class '{classes[smallest_class]}' has {smallest} training images, not more than "
                             f"smote.k_neighbors={k_neighbors}; used k_neighbors={smallest - 1} for this run")
        log.warning(report["warning"])
    if counts.min() == counts.max():  # already balanced
        return features, labels, report
    smote = SMOTE(k_neighbors=report["k_neighbors_used"], random_state=seed)
    resampled_x, resampled_y = smote.fit_resample(features, labels)
    return resampled_x.astype(np.float32), resampled_y.astype(labels.dtype), report


def resample(params, paths=Paths()):
    features_dir, out_dir, counts_path = paths.features, paths.resampled, paths.smote
    check_writable(out_dir, counts_path)
    features, labels = load_split(features_dir, "train")
    classes = read_info(features_dir)["classes"]
    smote = params.smote
    if smote.enabled:
        new_features, new_labels, report = smote_resample(
            features, labels, smote.k_neighbors, params.seed, classes)
    else:
        new_features, new_labels, report = features, labels, {"warning": None}
    with atomic_dir(out_dir) as tmp:
        save_arrays(tmp / "train.npz", features=new_features, labels=new_labels)
    before = np.bincount(labels, minlength=len(classes))
    after = np.bincount(new_labels, minlength=len(classes))
    write_json(counts_path, {
        "enabled": smote.enabled, **report,
        "train_before": {name: int(n) for name, n in zip(classes, before)},
        "train_after": {name: int(n) for name, n in zip(classes, after)},
        "synthetic_samples": int(len(new_labels) - len(labels)),
    })
    log.info("train features %d -> %d (%s)", len(labels), len(new_labels),
             "SMOTE" if smote.enabled else "SMOTE disabled")


