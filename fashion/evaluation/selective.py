"""What the evaluate stage says of each model's decision rule on the test split: the accuracy and coverage
its threshold (chosen by the decide stage, never on this split) realises, with bootstrap intervals; the
risk-coverage curve (plots/<model>/risk_coverage.csv, a DVC plot), the chosen points
(plots/chosen_thresholds.csv) and the share of test photos the novelty check calls unfamiliar.
"""

import csv
import json
from pathlib import Path

import numpy as np

from fashion.atomic import atomic_file
from fashion.evaluation.coverage import coverage_at, coverage_intervals, risk_coverage

CURVE_COLUMNS = ("coverage", "accuracy", "threshold")


def read_rules(path):
    """{model: the decide stage's rule} from metrics/decisions.json ({} without it: a run from before decide)."""
    path = Path(path)
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("models", {})


def realised(rule, labels, probabilities, resamples, seed):
    """The rule's threshold on the test split: what the decide stage expected, what the test split gives."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == np.asarray(labels)
    threshold = rule["threshold"]
    coverage, accuracy = coverage_at(confidence, correct, threshold)
    intervals = coverage_intervals(labels, confidence, correct, threshold, resamples, seed) or {}
    expected = {key: rule.get(key) for key in ("source", "coverage", "accuracy", "coverage_mean", "coverage_sd",
                                                "accuracy_mean", "accuracy_sd", "coverage_ci", "accuracy_ci")
                if rule.get(key) is not None}
    return {"threshold": threshold, "target_accuracy": rule.get("target_accuracy"), "reached": rule["reached"],
            "expected": expected,
            "test": {"coverage": round(coverage, 6), "coverage_ci": intervals.get("coverage"),
                     "accuracy": None if accuracy is None else round(accuracy, 6),
                     "accuracy_ci": intervals.get("accuracy")}}


def write_curve(path, labels, probabilities):
    """The risk-coverage curve, one row per distinct top probability, most confident first."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(CURVE_COLUMNS)
        if len(probabilities):
            thresholds, coverage, accuracy = risk_coverage(probabilities.max(axis=1),
                                                           probabilities.argmax(axis=1) == np.asarray(labels))
            writer.writerows([f"{c:.6f}", f"{a:.6f}", f"{t:.6f}"] for c, a, t in zip(coverage, accuracy, thresholds))


def read_curve(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: np.array([float(row[name]) for row in rows]) for name in CURVE_COLUMNS}


def write_chosen(path, decisions):
    """One row per model with a rule: where its threshold lands on the test split's curve."""
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "coverage", "accuracy", "threshold", "expected_coverage", "expected_accuracy"])
        for model, decision in decisions.items():
            test, expected = decision["test"], decision["expected"]
            writer.writerow([model, test["coverage"], "" if test["accuracy"] is None else test["accuracy"],
                             "" if decision["threshold"] is None else decision["threshold"],
                             expected.get("coverage_mean", expected.get("coverage", "")),
                             expected.get("accuracy_mean", expected.get("accuracy", "")) or ""])


def unfamiliar_share(familiarity, test_features):
    """The share of test photos the novelty check calls unfamiliar (about 1 - quantile for photos like the
    training ones), or None without the check."""
    if familiarity is None or not len(test_features):
        return None
    novelty = familiarity.novelty(test_features)
    return {"cutoff": familiarity.cutoff, "share": round(float(familiarity.unfamiliar(novelty).mean()), 6),
            "photos": int(len(novelty))}
