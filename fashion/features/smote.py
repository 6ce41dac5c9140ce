"""SMOTE on feature vectors: the resample stage balances the training features with it, and
cross-validation balances each training fold with it (never a held-out fold)."""

import logging

import numpy as np

from fashion.errors import PipelineError

log = logging.getLogger("smote")


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
