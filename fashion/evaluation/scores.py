"""Scores of one model on the test split: accuracy, balanced accuracy, macro-F1, per-class scores,
calibration, with bootstrap 95 % intervals.

Predictions and labels come from the same ordered arrays (read_test_split: the manifest's test rows in
order), never from a shuffled generator, so row i of the predictions is row i of the labels.
"""

import numpy as np

from fashion.data import dataset
from fashion.errors import PipelineError
from fashion.evaluation.intervals import bootstrap_intervals


def _round(value):
    return round(float(value), 6)


def expected_calibration_error(labels, probabilities, bins=15):
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by the images in each.

    0 means a model that says 0.8 is right 80% of the time. Bins are (lo, hi], the first [0, hi].
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            total += chosen.sum() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return total / len(labels)


def score(labels, probabilities, classes, threshold=0.8, bins=15):
    """Every test metric of one model, from labels and predicted probabilities in the same order."""
    from sklearn import metrics

    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(labels) == 0:
        raise PipelineError("the test split is empty; raise split.test and run `dvc repro` again")
    if probabilities.shape != (len(labels), len(classes)):
        raise PipelineError(f"got {probabilities.shape} probabilities for {len(labels)} test images and "
                            f"{len(classes)} classes; the model and the data do not match: run `dvc repro` again")
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)  # float32 softmax rows: exactly 1
    predicted = probabilities.argmax(axis=1)
    every = list(range(len(classes)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        labels, predicted, labels=every, zero_division=0)
    confident = probabilities.max(axis=1) >= threshold
    correct = predicted == labels
    return {
        "accuracy": _round(metrics.accuracy_score(labels, predicted)),
        # The mean of per-class recall over the classes present in the test split.
        "balanced_accuracy": _round(np.mean([r for r, s in zip(recall, support) if s])),
        "macro_f1": _round(metrics.f1_score(labels, predicted, labels=every, average="macro", zero_division=0)),
        "log_loss": _round(metrics.log_loss(labels, probabilities, labels=every)),
        "ece": _round(expected_calibration_error(labels, probabilities, bins)),
        "test_images": int(len(labels)),
        "low_confidence": {
            "threshold": threshold,
            "share": _round(1 - confident.mean()),
            "accuracy_above": _round(correct[confident].mean()) if confident.any() else None,
            "accuracy_below": _round(correct[~confident].mean()) if (~confident).any() else None,
        },
        "per_class": {
            name: {"precision": _round(precision[i]), "recall": _round(recall[i]), "f1": _round(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(classes)
        },
    }


def with_intervals(result, labels, probabilities, num_classes, resamples, seed):
    """The scores with a 95 % stratified-bootstrap interval after each headline metric (`<metric>_ci`)."""
    intervals = bootstrap_intervals(labels, np.asarray(probabilities).argmax(axis=1), num_classes, resamples, seed)
    if intervals is None:
        return result
    out = {}
    for key, value in result.items():
        out[key] = value
        if key in intervals:
            out[f"{key}_ci"] = intervals[key]
    return out


def classification_report(labels, probabilities, classes):
    from sklearn.metrics import classification_report as report

    return report(labels, np.asarray(probabilities).argmax(axis=1), labels=list(range(len(classes))),
                  target_names=classes, digits=3, zero_division=0)


def read_test_split(prepared_dir):
    """(rows, labels, paths) of the test split, in manifest order."""
    records = dataset.read_manifest(prepared_dir)
    rows, labels = dataset.split_arrays(records, "test")
    return rows, labels, [record["path"] for record in records if record["split"] == "test"]


def batched_probabilities(predict, batches, total, classes):
    """Stack predict(batch) over the batches, in order, into one (total, classes) array."""
    out = np.empty((total, classes), dtype=np.float32)
    done = 0
    for batch in batches:
        out[done:done + len(batch)] = predict(batch)
        done += len(batch)
    return out
