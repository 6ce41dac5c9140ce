"""The `decide` stage: each model's decision rule, chosen without the test split.

A photo gets `decision: auto` when the model's top probability reaches the model's threshold and the photo
is familiar, `review` when the probability is below it, `unfamiliar` when its backbone features are far from
every training photo's (fashion/features/familiarity.py), whatever the softmax says.

The threshold is the lowest one whose answered photos reach evaluate.target_accuracy (the most photos
answered at that accuracy; fashion/evaluation/coverage.py), chosen on:
- crossval's out-of-fold probabilities (metrics/cv_oof.csv) for every model in them, put on the final model's
  scale with its softmax temperature (the fold models are not calibrated). The coverage and accuracy CV
  expects are the mean and sd over the folds (of the first repeat) at that threshold;
- the validation split's predictions for a trained model that crossval does not cover (the CNN; the
  fine-tuned model unless crossval covers it). Validation also chose its early stopping and temperature,
  so these numbers lean optimistic; metrics/decisions.json says so, with bootstrap intervals over its photos.
No threshold reaches the target: the threshold is null and every photo goes to review.

Writes models/decisions/ (<kind>.json per trained model, with its threshold and the hash of the model file it
was chosen for; familiar.npz and familiar.json: the novelty reference and cutoff) and metrics/decisions.json.
"""

import csv
import json
import logging

import numpy as np

from fashion.atomic import atomic_dir, check_writable, write_json
from fashion.data import dataset
from fashion.digests import file_sha256
from fashion.errors import outdated
from fashion.evaluation.coverage import choose_threshold, coverage_at, coverage_intervals, with_temperature
from fashion.evaluation.folds import folds, pooled_features, pooled_paths
from fashion.evaluation.scores import batched_probabilities
from fashion.features.familiarity import fit_familiarity, save_familiarity
from fashion.features.store import load_split, read_info
from fashion.paths import Paths
from fashion.serving.classify import KINDS, is_enabled, load_classifier

log = logging.getLogger(__name__)

_SECTION = {"cnn": "cnn", "finetuned": "finetune"}  # the params section whose batch_size a model's images use


def read_out_of_fold(path, photo_paths, classes):
    """{model: (n, classes) probabilities} of metrics/cv_oof.csv, rows in the order of photo_paths."""
    if not path.is_file():
        return {}
    by_model = {}
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if header[3:] != [f"p_{name}" for name in classes]:
            raise outdated(path, f"has columns {header[3:]}, not one per class of {classes}")
        for row in reader:
            by_model.setdefault(row[2], []).append(row)
    out = {}
    for model, rows in by_model.items():
        if [row[0] for row in rows] != list(photo_paths):
            raise outdated(path, f"lists other photos for {model} than the extracted train + validation features")
        out[model] = np.array([[float(v) for v in row[3:]] for row in rows])
    return out


def _fold_spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return round(float(np.mean(values)), 6), round(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, 6)


def cv_rule(probabilities, labels, fold_of, target):
    """The threshold chosen on out-of-fold probabilities, and the coverage and accuracy over the folds at it."""
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    chosen = choose_threshold(confidence, correct, target)
    per_fold = [coverage_at(confidence[fold_of == f], correct[fold_of == f], chosen["threshold"])
                for f in np.unique(fold_of)]
    coverage_mean, coverage_sd = _fold_spread([c for c, _ in per_fold])
    accuracy_mean, accuracy_sd = _fold_spread([a for _, a in per_fold])
    return {**chosen, "source": "crossval", "photos": int(len(labels)), "folds": int(len(per_fold)),
            "coverage_mean": coverage_mean, "coverage_sd": coverage_sd,
            "accuracy_mean": accuracy_mean, "accuracy_sd": accuracy_sd}


def validation_rule(probabilities, labels, target, resamples, seed):
    """The threshold chosen on the validation split's predictions, with bootstrap intervals over its photos."""
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    chosen = choose_threshold(confidence, correct, target)
    intervals = coverage_intervals(labels, confidence, correct, chosen["threshold"], resamples, seed) or {}
    return {**chosen, "source": "validation", "photos": int(len(labels)),
            "coverage_ci": intervals.get("coverage"), "accuracy_ci": intervals.get("accuracy"),
            "note": "chosen on the validation split, which also chose the model's early stopping and temperature: "
                    "expect the test split to fall a little short of it"}


def validation_probabilities(kind, params, paths, classes):
    """(probabilities, labels) of a trained pixel model on the validation split, in manifest order."""
    classifier = load_classifier(kind, paths.models, with_backbone=False)
    if classifier.classes != classes:
        raise outdated(paths.model(kind), f"was trained on classes {classifier.classes}, the features have {classes}")
    rows, labels = dataset.split_arrays(dataset.read_manifest(paths.prepared), "validation")
    size = getattr(params, _SECTION[kind]).batch_size
    with dataset.ImageStore(paths.prepared / dataset.IMAGES_FILE) as store:
        probabilities = batched_probabilities(classifier.probabilities, store.batches(rows, size), len(rows),
                                              len(classes))
    return probabilities.astype(np.float64), labels, classifier.info.get("temperature", 1.0)


def model_temperature(kind, paths):
    """The softmax temperature a trained model was calibrated with (1 for the baseline or without one)."""
    info_path = paths.model(kind).with_suffix(".json")
    if kind not in KINDS or not info_path.is_file():
        return 1.0
    return json.loads(info_path.read_text()).get("temperature", 1.0)


def decide(params, paths=Paths()):
    check_writable(paths.decision("head"), paths.decisions_metrics)
    settings = params.evaluate
    target = settings.target_accuracy
    info = read_info(paths.features)
    classes = info["classes"]
    x, y, groups = pooled_features(paths.features, paths.prepared)
    # crossval's folds again (the first repeat's), to spread the chosen threshold's coverage over them
    fold_of = np.empty(len(y), dtype=np.int64)
    for _, fold, _, held in folds(y, groups, params.crossval.folds, 1, params.seed):
        fold_of[held] = fold
    out_of_fold = read_out_of_fold(paths.cv_oof, pooled_paths(paths.features, paths.prepared), classes)
    rules = {}
    for model, probabilities in out_of_fold.items():
        temperature = model_temperature(model, paths)
        rules[model] = {"target_accuracy": target,
                        **cv_rule(with_temperature(probabilities, temperature), y, fold_of, target),
                        "temperature": temperature}
    for kind in KINDS:
        if kind in rules or not is_enabled(kind, paths.models):
            continue
        if kind == "head":  # crossval covers it unless its file is missing: say so rather than guess
            raise outdated(paths.cv_oof, "has no out-of-fold probabilities of the head")
        probabilities, labels, temperature = validation_probabilities(kind, params, paths, classes)
        rules[kind] = {"target_accuracy": target,
                       **validation_rule(probabilities, labels, target, settings.bootstrap, params.seed),
                       "temperature": temperature}
    train_x, train_y = load_split(paths.features, "train")
    validation_x, _ = load_split(paths.features, "validation")
    unfamiliar = settings.unfamiliar
    familiarity = fit_familiarity(train_x, train_y, validation_x, unfamiliar.neighbours, unfamiliar.quantile,
                                  unfamiliar.reference, params.seed, info)
    with atomic_dir(paths.decisions) as folder:
        for kind in KINDS:
            if kind in rules and is_enabled(kind, paths.models):
                write_json(folder / f"{kind}.json", {"kind": kind, **rules[kind],
                                                     "model_sha256": file_sha256(paths.model(kind))})
        save_familiarity(familiarity, folder)
    record = {name: value for name, value in familiarity.record.items() if name not in ("preprocessing", "backbone")}
    write_json(paths.decisions_metrics, {"target_accuracy": target, "models": rules, "unfamiliar": record})
    for model, rule in rules.items():
        log.info("%s: %s", model, describe(rule, target))
    log.info("unfamiliar: novelty above %.4f (the %g quantile of %d validation photos; %d training photos kept)",
             familiarity.cutoff, unfamiliar.quantile, record["validation_photos"], record["reference_photos"])
    return rules, record


def describe(rule, target):
    """One line: the threshold and what it gives, where it was chosen."""
    if not rule["reached"]:
        return (f"no threshold reaches accuracy {target:g} on {rule['source']} (best {rule['best_accuracy']:.3f}): "
                "every photo goes to review")
    if rule["source"] == "crossval":
        if rule["accuracy_mean"] is None:  # no fold had a photo above the threshold: nothing to average
            return (f"threshold {rule['threshold']:.4f}: no photo of any fold answered at it over {rule['folds']} "
                    "folds")
        return (f"threshold {rule['threshold']:.4f}: {rule['coverage_mean']:.1%} +- {rule['coverage_sd']:.1%} of "
                f"photos answered at accuracy {rule['accuracy_mean']:.3f} +- {rule['accuracy_sd']:.3f} over "
                f"{rule['folds']} folds")
    return (f"threshold {rule['threshold']:.4f}: {rule['coverage']:.1%} of the {rule['photos']} validation photos "
            f"answered at accuracy {rule['accuracy']:.3f} (validation: no cross-validation of this model)")
