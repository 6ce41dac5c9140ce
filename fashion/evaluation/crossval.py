"""Cross-validation (stage `crossval`): the numbers to choose by. Repeated stratified k-fold over the train and
validation features (grouped by item when split.group is set), never the test split.

In every fold the head is built and trained exactly as the train_head stage does it (SMOTE on the
fold's training part only, early stopping on a share of the fold's training part, never on its
held-out fold), and the baseline (a logistic regression) is fitted on the same training part. Both
are scored on the held-out fold. It reads the cached features, so it adds no backbone pass.

Writes metrics/cv.json (mean and standard deviation of each metric per model, over folds x repeats),
metrics/cv_folds.csv (one row per fold and model) and metrics/cv_predictions.csv: every train and
validation photo's out-of-fold probabilities from the model CV ranks higher (by balanced accuracy),
averaged over the repeats. The suspects stage looks for wrong labels in them. metrics/cv_oof.csv holds the
same for every model (a `model` column): the decide stage chooses each model's confidence threshold on them.
"""

import contextlib
import csv
import functools
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fashion.atomic import atomic_file, check_writable, write_json
from fashion.data import dataset
from fashion.errors import PipelineError, outdated
from fashion.evaluation.intervals import METRICS, headline
from fashion.features.smote import smote_resample
from fashion.features.store import load_split_rows, read_info
from fashion.models.baseline import baseline_probabilities, fit_baseline
from fashion.models.head import fit_head
from fashion.paths import Paths
from fashion.runtime import make_reproducible

log = logging.getLogger(__name__)

MODELS = ("head", "baseline")


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


def early_stopping_split(labels, groups, share, seed):
    """(fit, stop) positions in a fold's training part: `share` of it kept apart for early stopping."""
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=max(2, round(1 / share)), shuffle=True, random_state=seed)
    fit, stop = next(splitter.split(labels, labels, groups))
    return fit, stop


def fold_head(params, classes, x, y, groups, train, seed):
    """(head, fit, stop): the head trained as train_head does it on a fold's training part `train`: SMOTE on
    its `fit` positions, early stopping on its `stop` positions (crossval.validation of it, grouped by item)."""
    fit, stop = early_stopping_split(y[train], groups[train], params.crossval.validation, seed)
    fit, stop = train[fit], train[stop]
    fit_x, fit_y = x[fit], y[fit]
    if params.smote.enabled:
        fit_x, fit_y, _ = smote_resample(fit_x, fit_y, params.smote.k_neighbors, seed, classes)
    make_reproducible(seed)
    model, _ = fit_head(fit_x, fit_y, x[stop], y[stop], len(classes), params.head, seed)
    return model, fit, stop


def fold_probabilities(params, classes, x, y, groups, train, held, seed):
    """{model: (held-out images, classes) probabilities} of the head and the baseline trained on `train`."""
    model, _, _ = fold_head(params, classes, x, y, groups, train, seed)
    return {
        # Called directly, not through predict(): each fold's new model would be traced into a graph again, for
        # one small batch, and TensorFlow warns about retracing from the fifth fold on.
        "head": np.asarray(model(x[held], training=False)),
        "baseline": baseline_probabilities(fit_baseline(x[train], y[train], seed), x[held], len(classes)),
    }


def pooled_paths(features_dir, prepared_dir):
    """The manifest paths of pooled_features' rows, in the same order."""
    rows = np.concatenate([load_split_rows(features_dir, split)[2] for split in ("train", "validation")])
    path_of_row = {record["row"]: record["path"] for record in dataset.read_manifest(prepared_dir)}
    return [path_of_row[int(row)] for row in rows]


def write_predictions(path, paths, labels, by_model, classes):
    """One row per photo and model ({model: probabilities}): its path, given label, the model and its out-of-fold
    probability of each class."""
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "model"] + [f"p_{name}" for name in classes])
        for model, probabilities in by_model.items():
            for source, label, row in zip(paths, labels, probabilities):
                writer.writerow([source, classes[label], model] + [f"{p:.6f}" for p in row])


def summarize(scores):
    """{model: {<metric>_mean, <metric>_sd}} over the folds; the standard deviation is the sample one."""
    return {name: {f"{metric}_{stat}": round(float(fn([s[name][metric] for s in scores])), 6)
                   for metric in METRICS for stat, fn in (("mean", np.mean), ("sd", lambda v: np.std(v, ddof=1)))}
            for name in MODELS}


def cross_validate(params, classes, x, y, groups, workers=None):
    """Every fold of every repeat: (scores per fold {model: headline}, one CSV row per fold and model,
    out-of-fold probabilities per model averaged over the repeats, seconds).

    The folds are independent (each seeds its own training), so they run side by side in `workers`
    processes (default: one per CPU core, at most one per fold); the results are the same for any number
    of workers, and are combined in fold order. A head's steps are too small to keep two cores busy,
    so two folds at once finish in little more time than one."""
    settings, seed = params.crossval, params.seed
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < settings.folds:
        raise PipelineError(f"class '{classes[int(np.argmin(counts))]}' has {int(counts.min())} train + validation "
                            f"image(s), fewer than crossval.folds={settings.folds}; every fold needs one. Lower "
                            "crossval.folds or add images")
    started = time.perf_counter()
    jobs = [(repeat, fold, train, held, (seed + 1000 * repeat + fold) % 2**32)
            for repeat, fold, train, held in folds(y, groups, settings.folds, settings.repeats, seed)]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    scores, rows = [], []
    # Each repeat predicts every photo once, from the folds that did not train on it.
    out_of_fold = {name: np.zeros((len(y), len(classes))) for name in MODELS}
    with _fold_runner(workers) as run:
        results = run(functools.partial(fold_probabilities, params, classes, x, y, groups),
                      [train for _, _, train, _, _ in jobs], [held for _, _, _, held, _ in jobs],
                      [fold_seed for *_, fold_seed in jobs])
        for (repeat, fold, _, held, _), probabilities in zip(jobs, results):
            for name in MODELS:
                out_of_fold[name][held] += probabilities[name] / settings.repeats
            result = {name: headline(y[held], probabilities[name].argmax(axis=1), len(classes)) for name in MODELS}
            scores.append(result)
            rows += [[repeat + 1, fold + 1, name, len(held)] + [f"{result[name][m]:.6f}" for m in METRICS]
                     for name in MODELS]
            log.info("repeat %d fold %d: %s", repeat + 1, fold + 1, ", ".join(
                f"{name} balanced accuracy {result[name]['balanced_accuracy']:.3f}" for name in MODELS))
    return scores, rows, out_of_fold, time.perf_counter() - started


@contextlib.contextmanager
def _fold_runner(workers):
    """map() over the folds: in this process, or in `workers` fresh ones (spawned: TensorFlow is not safe to
    fork), results in order as each is done."""
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool.map


def write_folds(path, rows):
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["repeat", "fold", "model", "images", *METRICS])
        writer.writerows(rows)


def crossval(params, paths=Paths()):
    check_writable(paths.cv, paths.cv_folds, paths.cv_predictions, paths.cv_oof)
    settings = params.crossval
    classes = read_info(paths.features)["classes"]
    x, y, groups = pooled_features(paths.features, paths.prepared)
    scores, rows, out_of_fold, seconds = cross_validate(params, classes, x, y, groups)
    summary = {**summarize(scores), "folds": settings.folds, "repeats": settings.repeats,
               "images": int(len(y)), "grouped": bool(len(set(groups)) < len(groups))}
    write_folds(paths.cv_folds, rows)
    write_json(paths.cv, summary)
    best = max(MODELS, key=lambda name: summary[name]["balanced_accuracy_mean"])  # ties: the head
    photo_paths = pooled_paths(paths.features, paths.prepared)
    write_predictions(paths.cv_predictions, photo_paths, y, {best: out_of_fold[best]}, classes)
    write_predictions(paths.cv_oof, photo_paths, y, out_of_fold, classes)  # every model: the decide stage's
    log.info("out-of-fold probabilities of the %s (higher CV balanced accuracy) in %s", best, paths.cv_predictions)
    for name in MODELS:
        log.info("%s: %s", name, ", ".join(f"{m} {summary[name][f'{m}_mean']:.3f} +- {summary[name][f'{m}_sd']:.3f}"
                                           for m in METRICS))
    log.info("%d folds x %d repeats on %d images in %.1f s (no backbone pass: cached features)",
             settings.folds, settings.repeats, len(y), seconds)
    return summary


