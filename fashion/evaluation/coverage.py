"""Selective classification: answer a photo only when the model's top probability reaches a threshold.

The risk-coverage curve is the accuracy of the answered photos against the share answered, for every
threshold; `choose_threshold` picks the lowest threshold whose answered photos reach a target accuracy
(the most photos answered at that accuracy). `coverage_intervals` bootstraps the coverage and accuracy
at a fixed threshold with the stratified resamples of fashion/evaluation/intervals.py.
"""

import math

import numpy as np

from fashion.evaluation.intervals import stratified_indices


def risk_coverage(confidence, correct):
    """(thresholds, coverage, accuracy), one entry per distinct confidence, highest first: answering the photos
    whose confidence is at least thresholds[i] answers coverage[i] of them, accuracy[i] of those right."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or not len(confidence):
        raise ValueError(f"need one confidence and one correct flag per photo, got shapes {confidence.shape} "
                         f"and {correct.shape}")
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    answered = np.arange(1, len(confidence) + 1)
    right = np.cumsum(correct)
    # at a threshold equal to a confidence, every photo with that confidence is answered: the last of each run
    last = np.r_[confidence[1:] != confidence[:-1], True]
    return confidence[last], answered[last] / len(confidence), right[last] / answered[last]


def choose_threshold(confidence, correct, target):
    """The lowest threshold whose answered photos are at least `target` right, with what it gives:
    {threshold, coverage, accuracy, reached}. No threshold reaches the target: threshold None (no photo is
    answered automatically, every one goes to review), reached false, and coverage 0 and accuracy None."""
    thresholds, coverage, accuracy = risk_coverage(confidence, correct)
    good = np.flatnonzero(accuracy >= target - 1e-12)
    if not len(good):
        return {"threshold": None, "coverage": 0.0, "accuracy": None, "reached": False,
                "best_accuracy": round(float(accuracy.max()), 6)}
    i = good[-1]  # thresholds fall along the curve: the last good entry is the lowest threshold
    # 6 decimals, rounded down: a threshold rounded up could pass over the very photo it was chosen at
    threshold = math.floor(float(thresholds[i]) * 1e6) / 1e6
    return {"threshold": threshold, "coverage": round(float(coverage[i]), 6),
            "accuracy": round(float(accuracy[i]), 6), "reached": True}


def coverage_at(confidence, correct, threshold):
    """(share of photos answered at `threshold`, accuracy of those or None); threshold None answers none."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    answered = np.zeros(len(confidence), bool) if threshold is None else confidence >= threshold
    accuracy = float(correct[answered].mean()) if answered.any() else None
    return float(answered.mean()), accuracy


def coverage_intervals(labels, confidence, correct, threshold, resamples, seed, level=0.95):
    """{coverage: [lo, hi], accuracy: [lo, hi] or None}: percentile intervals over stratified bootstrap resamples
    of the photos (each resample keeps the class counts of labels); None when resamples is 0."""
    if not resamples:
        return None
    labels = np.asarray(labels)
    answered = (np.zeros(len(labels), bool) if threshold is None
                else np.asarray(confidence, dtype=np.float64) >= threshold)
    correct = np.asarray(correct, dtype=bool)
    index = stratified_indices(labels, int(resamples), np.random.default_rng(seed))
    shares = answered[index].mean(axis=1)
    hits = (answered & correct)[index].sum(axis=1)
    counts = answered[index].sum(axis=1)
    accuracy = hits[counts > 0] / counts[counts > 0]
    tail = (1 - level) / 2

    def interval(values):
        return [round(float(q), 6) for q in np.quantile(values, [tail, 1 - tail])] if len(values) else None

    return {"coverage": interval(shares), "accuracy": interval(accuracy)}


def with_temperature(probabilities, temperature):
    """Softmax probabilities rescaled as if the logits had been divided by `temperature`: p^(1/T), renormalised.

    Exact for a softmax (log p is the logits less a constant per row), so the out-of-fold probabilities of
    cross-validation's uncalibrated fold models can be put on the final, calibrated model's scale."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    logits = np.log(p) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)
