"""95% confidence intervals for the test metrics, by a stratified bootstrap over test images.

Each resample draws, within every true class, that class's count of test images with
replacement, so every resample has the test split's class counts. The metrics of each
resample come from its confusion counts, all resamples at once with numpy; the interval is
the percentile interval of the resampled values.
"""

import numpy as np

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")

# Resamples per block: a (CHUNK, n) index array and a (CHUNK, k, k) confusion array at a time.
CHUNK = 100


def headline(labels, predicted, num_classes):
    """Accuracy, balanced accuracy and macro F1 of one set of predictions, as floats.

    Balanced accuracy is the mean recall over the classes present in labels; macro F1 is
    the mean F1 over all num_classes classes, 0 for a class with no images and no predictions.
    """
    labels, predicted, num_classes = _checked(labels, predicted, num_classes)
    scores = confusion_metrics(confusion_counts(labels, predicted, num_classes))
    return {name: float(scores[name]) for name in METRICS}


def bootstrap_intervals(labels, predicted, num_classes, resamples=1000, seed=0, level=0.95):
    """{metric: [lo, hi]}: percentile intervals from `resamples` stratified bootstrap resamples.

    Deterministic for the same inputs and seed, and for the same (label, prediction) pairs in any
    order: they are put in one canonical order first. Values rounded to 6 decimals. None when
    resamples is 0.
    """
    labels, predicted, num_classes = _checked(labels, predicted, num_classes)
    if isinstance(resamples, bool) or int(resamples) != resamples or resamples < 0:
        raise ValueError(f"resamples must be a whole number >= 0, got {resamples!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    if resamples == 0:
        return None
    canonical = np.lexsort((predicted, labels))
    labels, predicted = labels[canonical], predicted[canonical]
    values = resampled_metrics(labels, predicted, num_classes, int(resamples), np.random.default_rng(seed))
    tail = (1 - level) / 2
    return {name: [round(float(q), 6) for q in np.quantile(values[name], [tail, 1 - tail])]
            for name in METRICS}


def resampled_metrics(labels, predicted, num_classes, resamples, rng):
    """{metric: array of `resamples` values}, one per stratified bootstrap resample."""
    blocks = {name: [] for name in METRICS}
    for start in range(0, resamples, CHUNK):
        index = stratified_indices(labels, min(CHUNK, resamples - start), rng)
        scores = confusion_metrics(confusion_counts(labels[index], predicted[index], num_classes))
        for name in METRICS:
            blocks[name].append(scores[name])
    return {name: np.concatenate(blocks[name]) for name in METRICS}


def stratified_indices(labels, resamples, rng):
    """A (resamples, n) array of image indices; row r is one resample with the class counts of labels.

    Column j of every row holds an image of the class of image j, drawn with replacement
    from that class, so labels[index] equals labels row by row.
    """
    labels = np.asarray(labels)
    index = np.empty((resamples, len(labels)), dtype=np.int64)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        index[:, members] = members[rng.integers(0, len(members), size=(resamples, len(members)))]
    return index


def confusion_counts(labels, predicted, num_classes):
    """Confusion counts [..., true, predicted] of label and prediction arrays shaped (n,) or (r, n)."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    cells = num_classes * num_classes
    codes = labels * num_classes + predicted
    if codes.ndim == 1:
        return np.bincount(codes, minlength=cells).reshape(num_classes, num_classes)
    rows = codes.shape[0]
    codes = codes + (np.arange(rows, dtype=np.int64) * cells)[:, None]
    return np.bincount(codes.ravel(), minlength=rows * cells).reshape(rows, num_classes, num_classes)


def confusion_metrics(confusion):
    """{metric: value or array} from confusion counts shaped (k, k) or (r, k, k).

    Precision and F1 are 0 where their denominator is 0; balanced accuracy averages the
    recall of the classes with at least one image.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    support = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    total = support.sum(axis=-1)
    present = support > 0
    recall = _divide(hits, support)
    f1 = _divide(2 * hits, support + predicted)  # = 2PR/(P+R), and 0 where P and R are both 0
    return {
        "accuracy": hits.sum(axis=-1) / total,
        "balanced_accuracy": recall.sum(axis=-1) / present.sum(axis=-1),
        "macro_f1": f1.mean(axis=-1),
    }


def _divide(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0."""
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _checked(labels, predicted, num_classes):
    """(labels, predictions, num_classes) as int64 arrays and an int, or a ValueError saying what is wrong."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.ndim != 1 or predicted.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D, got shapes {labels.shape} and {predicted.shape}")
    if len(labels) != len(predicted):
        raise ValueError(f"got {len(labels)} labels but {len(predicted)} predictions")
    if len(labels) == 0:
        raise ValueError("no test images: labels and predictions are empty")
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a whole number >= 1, got {num_classes!r}")
    for name, values in (("labels", labels), ("predictions", predicted)):
        if values.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer class indices, got dtype {values.dtype}")
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}, got {values.min()}..{values.max()}")
    return labels.astype(np.int64), predicted.astype(np.int64), int(num_classes)
