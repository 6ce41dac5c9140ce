"""Cross-validation (stage `crossval`): the numbers to choose by. Repeated stratified k-fold over the train and
validation features (grouped by item when split.group is set), never the test split.

In every fold the head is built and trained exactly as the train_head stage does it (SMOTE on the
fold's training part only, early stopping on a share of the fold's training part, never on its
held-out fold), and the baseline (a logistic regression) is fitted on the same training part. Both
are scored on the held-out fold. They read the cached features, so they add no backbone pass. With
finetune.enabled, the fine-tuned backbone is trained in every fold too, from that fold's head and the
prepared images, as the finetune stage trains it (fashion/evaluation/crossval_finetuned.py).

Writes metrics/cv.json (mean and standard deviation of each metric per model, over folds x repeats),
metrics/cv_folds.csv (one row per fold and model), metrics/cv_predictions.csv: every train and
validation photo's out-of-fold probabilities from the model CV ranks highest (by balanced accuracy),
averaged over the repeats, where the suspects stage looks for wrong labels; and metrics/cv_oof.csv:
the same for every model, one block of rows per model (its `model` column says which), where the decide
stage chooses each model's confidence threshold.
"""

import contextlib
import csv
import functools
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from fashion.atomic import atomic_file, check_writable, write_json
from fashion.errors import PipelineError, ShortNames
from fashion.evaluation.crossval_finetuned import check_fit_parts, fine_tuned_probabilities, fold_images
from fashion.evaluation.folds import early_stopping_split, fold_jobs, pooled_features, pooled_paths, pooled_rows
from fashion.evaluation.intervals import METRICS, headline
from fashion.features.smote import smote_resample
from fashion.features.store import read_info
from fashion.models.baseline import baseline_probabilities, fit_baseline
from fashion.models.head import fit_head
from fashion.paths import Paths
from fashion.runtime import make_reproducible

log = logging.getLogger(__name__)

MODELS = ("head", "baseline")  # always cross-validated
FINETUNED = "finetuned"  # too, with finetune.enabled


def model_names(params):
    """The models crossval scores, in the order of its outputs (and of ties: the first wins)."""
    return MODELS + ((FINETUNED,) if params.finetune.enabled else ())


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


def fold_probabilities(params, classes, x, y, groups, train, held, seed, images=None, name="fold"):
    """({model: (held-out images, classes) probabilities}, notes) of the head and the baseline trained on `train`,
    and with `images` (crossval_finetuned.FoldImages) of the fine-tuned model too; notes: its epochs and seconds.
    `name` begins the fine-tuning's log lines (the folds run side by side)."""
    model, fit, stop = fold_head(params, classes, x, y, groups, train, seed)
    probabilities = {
        # Called directly, not through predict(): each fold's new model would be traced into a graph again, for
        # one small batch, and TensorFlow warns about retracing from the fifth fold on.
        "head": np.asarray(model(x[held], training=False)),
        "baseline": baseline_probabilities(fit_baseline(x[train], y[train], seed), x[held], len(classes)),
    }
    notes = {}
    if images is not None:
        probabilities[FINETUNED], notes = fine_tuned_probabilities(params, images, model, y, fit, stop, held,
                                                                   len(classes), seed, name)
    return probabilities, notes


def write_predictions(path, paths, labels, probabilities, classes):
    """One row per photo and model, model after model: the photo's path, given label, the model and its
    out-of-fold probability of each class. probabilities: {model: (photos, classes)}."""
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "model"] + [f"p_{name}" for name in classes])
        for model, rows in probabilities.items():
            for source, label, row in zip(paths, labels, rows):
                writer.writerow([source, classes[label], model] + [f"{p:.6f}" for p in row])


def summarize(scores, models=MODELS):
    """{model: {<metric>_mean, <metric>_sd}} over the folds; the standard deviation is the sample one."""
    return {name: {f"{metric}_{stat}": round(float(fn([s[name][metric] for s in scores])), 6)
                   for metric in METRICS for stat, fn in (("mean", np.mean), ("sd", lambda v: np.std(v, ddof=1)))}
            for name in models}


def cross_validate(params, classes, x, y, groups, workers=None, images=None):
    """Every fold of every repeat: (scores per fold {model: headline}, one CSV row per fold and model,
    out-of-fold probabilities per model averaged over the repeats, seconds).

    The folds are independent (each seeds its own training), so they run side by side in `workers`
    processes (default: one per CPU core, at most one per fold); the results are the same for any number
    of workers, and are combined in fold order. A head's steps are too small to keep two cores busy,
    so two folds at once finish in little more time than one. With finetune.enabled, `images`
    (crossval_finetuned.FoldImages) gives the pixels the fine-tuned model trains on in each fold."""
    settings, seed = params.crossval, params.seed
    models = model_names(params)
    if params.finetune.enabled and images is None:
        raise ValueError("finetune.enabled: cross_validate needs the images to fine-tune on (fold_images)")
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < settings.folds:
        raise PipelineError(f"class '{classes[int(np.argmin(counts))]}' has {int(counts.min())} train + validation "
                            f"image(s), fewer than crossval.folds={settings.folds}; every fold needs one. Lower "
                            "crossval.folds or add images")
    started = time.perf_counter()
    jobs = fold_jobs(y, groups, settings, seed)
    if images is not None:  # before hours of training: every fold's fine-tuning sees every class
        check_fit_parts(classes, y, [(repeat, fold, train[early_stopping_split(y[train], groups[train],
                                                                                settings.validation, fold_seed)[0]])
                                     for repeat, fold, train, _, fold_seed in jobs])
    if images is not None and workers is None and visible_gpus():
        workers = 1  # fine_tune trains on every visible GPU: one fold at a time, in this process
        log.info("GPUs visible: the folds fine-tune one after another, each on every GPU")
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    scores, rows = [], []
    # Each repeat predicts every photo once, from the folds that did not train on it.
    out_of_fold = {name: np.zeros((len(y), len(classes))) for name in models}
    # Fine-tuning takes minutes an epoch on a CPU: its workers log each epoch, as the finetune stage does.
    with _fold_runner(workers, logging.getLogger().level if images is not None else None) as run:
        results = run(functools.partial(fold_probabilities, params, classes, x, y, groups),
                      [train for _, _, train, _, _ in jobs], [held for _, _, _, held, _ in jobs],
                      [fold_seed for *_, fold_seed in jobs], [images] * len(jobs),
                      [f"repeat {repeat + 1} fold {fold + 1}" for repeat, fold, *_ in jobs])
        for (repeat, fold, _, held, _), (probabilities, notes) in zip(jobs, results):
            for name in models:
                out_of_fold[name][held] += probabilities[name] / settings.repeats
            result = {name: headline(y[held], probabilities[name].argmax(axis=1), len(classes)) for name in models}
            scores.append(result)
            rows += [[repeat + 1, fold + 1, name, len(held)] + [f"{result[name][m]:.6f}" for m in METRICS]
                     for name in models]
            log.info("repeat %d fold %d: %s", repeat + 1, fold + 1, ", ".join(
                f"{name} balanced accuracy {result[name]['balanced_accuracy']:.3f}" for name in models))
            if notes:
                log.info("repeat %d fold %d: fine-tuned %d epoch(s), best %d, in %.0f s (%.0f s training)",
                         repeat + 1, fold + 1, notes["epochs_run"], notes["best_epoch"], notes["seconds"],
                         notes["train_seconds"])
    return scores, rows, out_of_fold, time.perf_counter() - started


def visible_gpus():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


@contextlib.contextmanager
def _fold_runner(workers, log_level=None):
    """map() over the folds: in this process, or in `workers` fresh ones (spawned: TensorFlow is not safe to
    fork), results in order as each is done. With a log_level, the workers log to stderr as the stage does."""
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=None if log_level is None else _log_like_a_stage,
                             initargs=() if log_level is None else (log_level,)) as pool:
        yield pool.map


def _log_like_a_stage(level):
    handler = logging.StreamHandler()
    handler.setFormatter(ShortNames("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def write_folds(path, rows):
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["repeat", "fold", "model", "images", *METRICS])
        writer.writerows(rows)


def crossval(params, paths=Paths()):
    check_writable(paths.cv, paths.cv_folds, paths.cv_predictions, paths.cv_oof)
    settings = params.crossval
    models = model_names(params)
    info = read_info(paths.features)
    classes = info["classes"]
    x, y, groups = pooled_features(paths.features, paths.prepared)
    images = None
    if params.finetune.enabled:
        images = fold_images(info, paths.features, paths.prepared, pooled_rows(paths.features))
        log.info("fine-tuning %s in every fold too (finetune.enabled): %d epoch(s) at most per fold",
                 images.recipe.model, params.finetune.epochs)
    scores, rows, out_of_fold, seconds = cross_validate(params, classes, x, y, groups, images=images)
    summary = {**summarize(scores, models), "folds": settings.folds, "repeats": settings.repeats,
               "images": int(len(y)), "grouped": bool(len(set(groups)) < len(groups))}
    write_folds(paths.cv_folds, rows)
    write_json(paths.cv, summary)
    best = max(models, key=lambda name: summary[name]["balanced_accuracy_mean"])  # ties: the first, the head
    photos = pooled_paths(paths.features, paths.prepared)
    write_predictions(paths.cv_predictions, photos, y, {best: out_of_fold[best]}, classes)
    write_predictions(paths.cv_oof, photos, y, out_of_fold, classes)
    log.info("out-of-fold probabilities of the %s (highest CV balanced accuracy) in %s, of every model in %s", best,
             paths.cv_predictions, paths.cv_oof)
    for name in models:
        log.info("%s: %s", name, ", ".join(f"{m} {summary[name][f'{m}_mean']:.3f} +- {summary[name][f'{m}_sd']:.3f}"
                                           for m in METRICS))
    log.info("%d folds x %d repeats on %d images in %.1f s (%s)", settings.folds, settings.repeats, len(y), seconds,
             "fine-tuning from the prepared images" if images else "no backbone pass: cached features")
    return summary


