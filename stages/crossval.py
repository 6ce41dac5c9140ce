"""Stage `crossval`: the numbers to choose by, never the test split.

Repeated stratified k-fold over the train and validation features (grouped by item when split.group
is set): in every fold the head is trained as train_head trains it (SMOTE on the fold's training part
only) and the baseline fitted on the same part, both scored on the held-out fold
(fashion/evaluation/crossval.py). It reads the cached features, so it adds no backbone pass.

Writes metrics/cv.json (mean and standard deviation of each metric per model), metrics/cv_folds.csv
(one row per fold and model) and metrics/cv_predictions.csv (every train and validation photo's
out-of-fold probabilities from the model CV ranks higher, which the suspects stage reads).
"""

import logging

from fashion.atomic import check_writable, write_json
from fashion.errors import run_stage
from fashion.evaluation.crossval import (MODELS, cross_validate, pooled_features, pooled_paths, summarize,
                                         write_folds, write_predictions)
from fashion.evaluation.intervals import METRICS
from fashion.features.store import read_info
from fashion.params import load_params
from fashion.paths import Paths

log = logging.getLogger(__name__)


def crossval(params, paths=Paths()):
    check_writable(paths.cv, paths.cv_folds, paths.cv_predictions)
    settings = params["crossval"]
    classes = read_info(paths.features)["classes"]
    x, y, groups = pooled_features(paths.features, paths.prepared)
    scores, rows, out_of_fold, seconds = cross_validate(params, classes, x, y, groups)
    summary = {**summarize(scores), "folds": settings["folds"], "repeats": settings["repeats"],
               "images": int(len(y)), "grouped": bool(len(set(groups)) < len(groups))}
    write_folds(paths.cv_folds, rows)
    write_json(paths.cv, summary)
    best = max(MODELS, key=lambda name: summary[name]["balanced_accuracy_mean"])  # ties: the head
    write_predictions(paths.cv_predictions, pooled_paths(paths.features, paths.prepared), y, out_of_fold[best],
                      classes, best)
    log.info("out-of-fold probabilities of the %s (higher CV balanced accuracy) in %s", best, paths.cv_predictions)
    for name in MODELS:
        log.info("%s: %s", name, ", ".join(f"{m} {summary[name][f'{m}_mean']:.3f} +- {summary[name][f'{m}_sd']:.3f}"
                                           for m in METRICS))
    log.info("%d folds x %d repeats on %d images in %.1f s (no backbone pass: cached features)",
             settings["folds"], settings["repeats"], len(y), seconds)
    return summary


def main():
    crossval(load_params())


if __name__ == "__main__":
    run_stage(main)
