"""Stage `evaluate`: the models on the held-out test split, as DVC metrics and plots.

Predictions and labels come from the same ordered arrays: the test rows of the manifest
(for the CNN, read from the image store in that order) and the test features of the extract
stage, which carry their own labels. Nothing is shuffled, so row i of the predictions is
row i of the labels by construction (the original notebooks compared a shuffled generator's
predictions with unshuffled labels and reported 0.33).

The models are the custom CNN, the head, the fine-tuned backbone when fine-tuning is on
(finetune.enabled; when off, its files say so and its metrics file is empty) and the baseline.
Writes metrics/<model>.json for cnn, head, finetuned and baseline (the headline numbers `dvc metrics show`
lists, one row per model: accuracy, balanced accuracy with its 95 % interval, macro-F1 and, from
the crossval stage, the cross-validated balanced accuracy), metrics/test.json (every score of
every model, each headline metric with its 95 % interval), metrics/per_class.json (precision,
recall, F1 and support per class and model), metrics/report.md (classification reports, SMOTE
counts) and, per model, plots/<model>/predictions.csv (one row per test image: actual, predicted,
confidence and every class probability; DVC's confusion plot reads it) plus PNG renderings:
confusion.png, curves.png and mistakes.png. It ends by logging a summary table.
"""

import contextlib
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from stages import dataset
from stages.atomic import atomic_file, check_writable, write_json
from stages.baseline import baseline_probabilities, fit_baseline
from stages.classify import KINDS, TEST_METRICS, is_enabled, load_classifier
from stages.errors import PipelineError, missing, outdated, run_stage
from stages.exclusions import SUSPECTS_CSV, read_suspects
from stages.extractor import is_random
from stages.features import CV_METRICS, FEATURES_DIR, SMOTE_COUNTS, features_of_rows, load_split, read_info
from stages.intervals import METRICS as HEADLINE, bootstrap_intervals
from stages.params import load_params
from stages.recipes import BackboneRecipe
from stages.training import TEMPERATURE_BOUNDS, at_temperature_bound

log = logging.getLogger("evaluate")

PER_CLASS_PATH = Path("metrics/per_class.json")
# The headline file's keys: short, so that `dvc metrics show` fits a terminal.
HEADLINE_KEYS = {"accuracy": "acc", "balanced_accuracy": "bal_acc", "macro_f1": "f1"}
REPORT_PATH = Path("metrics/report.md")
PLOTS_DIR = Path("plots")
# The params section whose batch_size a model's test images go through in.
_SECTION = {"cnn": "cnn", "finetuned": "finetune"}


# --- scores ------------------------------------------------------------------------------

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


def _round(value):
    return round(float(value), 6)


def shown_metrics(result, cv=None):
    """The few numbers of one model that `dvc metrics show` lists: rounded to 3 places, short keys.

    acc, bal_acc with its 95 % interval (bal_lo, bal_hi), f1 (macro) and, where the crossval stage
    scored this model, cv_bal and cv_sd: the cross-validated balanced accuracy, mean and sd.
    """
    out = {}
    for name, short in HEADLINE_KEYS.items():
        out[short] = round(result[name], 3)
        if name == "balanced_accuracy" and f"{name}_ci" in result:
            out["bal_lo"], out["bal_hi"] = (round(value, 3) for value in result[f"{name}_ci"])
    if cv is not None:
        out["cv_bal"] = round(cv["balanced_accuracy_mean"], 3)
        out["cv_sd"] = round(cv["balanced_accuracy_sd"], 3)
    return out


def backbone_weights(backbone):
    """What test.json records of the frozen backbone a model's features came from: None for the CNN (no
    backbone), else the backbone(s) and the weights used, and whether any of them were random."""
    if backbone is None:
        return {"backbone": None, "weights": None, "random_weights": False}
    return {"backbone": backbone["model"], "weights": backbone["weights"], "random_weights": is_random(backbone["weights"])}


def model_notes(title, result, predicted, classes):
    """Plain-language warnings about one model's test scores: random backbone weights, one class predicted for
    every test image (its intervals then have zero width: not precision), a temperature at the bound of its search."""
    notes = []
    if result.get("random_weights"):
        notes.append(f"{title}: RANDOM backbone weights ({result['weights']}); its scores say nothing about "
                     "transfer learning")
    distinct = np.unique(predicted)
    if len(distinct) == 1 and len(classes) > 1:
        notes.append(f"{title}: predicts {classes[int(distinct[0])]} for every test image; its zero-width "
                     "intervals are not precision, the model learned nothing")
    temperature = result.get("temperature")
    if temperature is not None and at_temperature_bound(temperature):
        notes.append(f"{title}: softmax temperature {temperature:g} at the bound of its search "
                     f"[{TEMPERATURE_BOUNDS[0]:g}, {TEMPERATURE_BOUNDS[1]:g}]: the validation predictions are "
                     "degenerate, the probabilities are not calibrated")
    return notes


def summary_table(results, titles, cv):
    """The end-of-run table: one line per model, its test scores with intervals and its CV mean."""
    def cell(result, name):
        interval = result.get(f"{name}_ci")
        return f"{result[name]:.3f}" + ("" if interval is None else " [{:.2f}, {:.2f}]".format(*interval))

    header = ("model", "accuracy", "balanced accuracy", "macro-F1", "CV balanced")
    lines = [header]
    for kind, result in results.items():
        folds = cv.get(kind)
        lines.append((titles[kind], cell(result, "accuracy"), cell(result, "balanced_accuracy"),
                      cell(result, "macro_f1"),
                      "-" if folds is None else f"{folds['balanced_accuracy_mean']:.3f} ± "
                                                f"{folds['balanced_accuracy_sd']:.3f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in lines)


def read_cv(path):
    """The crossval stage's means per model ({} when it has not run: its numbers are then left out)."""
    path = Path(path)
    if not path.is_file():
        return {}
    written = json.loads(path.read_text())
    return {kind: section for kind, section in written.items() if isinstance(section, dict)}


def classification_report(labels, probabilities, classes):
    from sklearn.metrics import classification_report as report

    return report(labels, np.asarray(probabilities).argmax(axis=1), labels=list(range(len(classes))),
                  target_names=classes, digits=3, zero_division=0)


# --- predictions, in test-split order -------------------------------------------------------

def read_test_split(prepared_dir=dataset.PREPARED_DIR):
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


# --- outputs -----------------------------------------------------------------------------

def write_predictions(path, paths, labels, probabilities, classes):
    """One row per test image: DVC's confusion template reads `actual` and `predicted`."""
    predicted = probabilities.argmax(axis=1)
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "actual", "predicted", "confidence"] + [f"p_{name}" for name in classes])
        for i, source in enumerate(paths):
            writer.writerow([source, classes[labels[i]], classes[predicted[i]], f"{probabilities[i].max():.6f}"]
                            + [f"{p:.6f}" for p in probabilities[i]])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path):
    plt = _pyplot()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def plot_confusion(path, labels, probabilities, classes, title):
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    matrix = confusion_matrix(labels, probabilities.argmax(axis=1), labels=list(range(len(classes))))
    side = max(4.0, 0.7 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, square=True,
                xticklabels=classes, yticklabels=classes, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    _save_figure(fig, path)


def plot_curves(path, history_path, title):
    """Accuracy and loss per epoch, training and validation, with the epoch whose weights were kept."""
    import pandas as pd

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    if not Path(history_path).is_file():
        raise missing(history_path)
    history = pd.read_csv(history_path)
    best = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.plot(history["epoch"], history[metric], label=f"training {metric}")
        ax.plot(history["epoch"], history[f"val_{metric}"], label=f"validation {metric}")
        ax.axvline(best, color="grey", linestyle=":", label=f"kept: epoch {best}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save_figure(fig, path)


def plot_mistakes(path, store, rows, labels, probabilities, classes, count, title):
    """The test images the model got wrong with the highest confidence: the ones to look at first."""
    plt = _pyplot()
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    # Most confident first; ties in manifest order, so the gallery is the same every run.
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    if len(worst) == 0:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes on the test split" if count else "mistakes gallery turned off",
                ha="center", va="center", fontsize=14)
        fig.suptitle(title)
        _save_figure(fig, path)
        return
    columns = min(4, len(worst))
    lines = -(-len(worst) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(3 * columns, 3.4 * lines), squeeze=False)
    images = store.read(rows[worst])
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, i in zip(axes.flat, images, worst):
        ax.imshow(image)
        ax.set_title(f"true: {classes[labels[i]]}\npredicted: {classes[predicted[i]]} ({confidence[i]:.2f})",
                     fontsize=9)
    fig.suptitle(f"{title}: the {len(worst)} most confident mistakes")
    _save_figure(fig, path)


def suspects_line(suspects_path):
    """One sentence on the suspects stage's count, or None without its table."""
    if not Path(suspects_path).is_file():
        return None
    table = read_suspects(suspects_path)
    return (f"{len(table)} suspect label(s) among the train + validation photos ({suspects_path}, worst first; "
            "`python -m stages.serve`, then /review, to look at them)")


def write_report(path, sections, smote, suspects=None):
    lines = ["# Test-split evaluation", ""]
    for kind, section in sections.items():
        m = section["metrics"]
        low = m["low_confidence"]
        temperature = ("" if m.get("temperature") is None else
                       f"; softmax temperature {m['temperature']:g} (fitted on validation, 1 = not calibrated)")
        headline = ", ".join(f"{name.replace('_', ' ').replace('macro f1', 'macro-F1')} {m[name]:.3f}"
                             + (" [{:.3f}, {:.3f}]".format(*m[f"{name}_ci"]) if f"{name}_ci" in m else "")
                             for name in HEADLINE)
        random = " **Random weights**: the backbone's features were not pretrained." if m.get("random_weights") else ""
        lines += [f"## {section['title']}", ""]
        lines += [f"> Note: {note}" for note in section.get("notes", [])] + ([""] if section.get("notes") else [])
        lines += [f"{headline}, log loss {m['log_loss']:.3f}, ECE {m['ece']:.3f} on {m['test_images']} test "
                  f"images{temperature}. Brackets: 95 % intervals (stratified bootstrap over the test images).{random}", "",
                  f"Under the confidence threshold {low['threshold']:g}: {low['share']:.1%} of the test images "
                  f"(accuracy above it: {_maybe(low['accuracy_above'])}, below it: {_maybe(low['accuracy_below'])}).",
                  "", "```", section["report"].rstrip(), "```", ""]
    if smote is not None:
        lines += ["## SMOTE (training features of the head only)", ""]
        if smote.get("enabled"):
            lines += ["| class | before | after |", "|---|---:|---:|"]
            lines += [f"| {name} | {smote['train_before'][name]} | {smote['train_after'][name]} |"
                      for name in smote["train_before"]]
            if smote.get("warning"):
                lines += ["", f"Warning: {smote['warning']}"]
        else:
            lines += ["SMOTE was turned off (smote.enabled: false)."]
        lines.append("")
    if suspects is not None:
        lines += ["## Suspect labels", "", suspects + ".", ""]
    with atomic_file(path, "w") as handle:
        handle.write("\n".join(lines))


def write_turned_off(folder, classes, text):
    """The plots of a model that was not trained: predictions without rows, and pictures that say so."""
    plt = _pyplot()
    with atomic_file(Path(folder) / "predictions.csv", "w") as handle:
        csv.writer(handle).writerow(["path", "actual", "predicted", "confidence"] + [f"p_{name}" for name in classes])
    for name in ("confusion.png", "curves.png", "mistakes.png"):
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)
        _save_figure(fig, Path(folder) / name)


def _maybe(value):
    return "n/a" if value is None else f"{value:.3f}"


# --- the stage -----------------------------------------------------------------------------

class StepTimer:
    """Times the stage's steps by kind (loading models, predictions, bootstrap, figures, ...) for the closing
    line, and says what it is doing when one step runs past `announce_after` seconds, so the stage is never
    silent for long."""

    def __init__(self, logger, announce_after=5.0):
        self.log, self.announce_after, self.seconds = logger, announce_after, {}

    @contextlib.contextmanager
    def step(self, kind, what):
        import threading

        started = time.perf_counter()
        timer = threading.Timer(self.announce_after, self.log.info, ("%s ...", what))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            seconds = time.perf_counter() - started
            self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
            if seconds >= self.announce_after:
                self.log.info("%s: done in %.1f s", what, seconds)

    def line(self):
        return ", ".join(f"{kind} {seconds:.1f} s" for kind, seconds in self.seconds.items())


def evaluate(params, prepared_dir=dataset.PREPARED_DIR, features_dir=FEATURES_DIR, models_dir="models",
             metrics_path=TEST_METRICS, report_path=REPORT_PATH, plots_dir=PLOTS_DIR, smote_path=SMOTE_COUNTS,
             cv_path=CV_METRICS, test_rows=None, suspects_path=SUSPECTS_CSV):
    """Score every model on the test split and write metrics, report and plots.

    test_rows/labels/paths default to the manifest's test split; tests pass a permutation.
    """
    plots_dir = Path(plots_dir)
    check_writable(metrics_path, report_path, *(plots_dir / kind / "predictions.csv" for kind in KINDS))
    started = time.perf_counter()
    steps = StepTimer(log)
    settings = params["evaluate"]
    threshold, bins = settings["confidence_threshold"], settings["calibration_bins"]
    summary = dataset.read_summary(prepared_dir)
    classes = summary["classes"]
    rows, labels, paths = read_test_split(prepared_dir) if test_rows is None else test_rows
    features_backbone = read_info(features_dir).get(BackboneRecipe.RECORD_KEY)

    def scored(probabilities, backbone, title):
        """Every score of one model, its 95 % intervals, the backbone weights behind it, and its notes."""
        with steps.step("bootstrap", f"{title}: {settings['bootstrap']} bootstrap resamples for the 95 % intervals"):
            result = with_intervals(score(labels, probabilities, classes, threshold, bins), labels,
                                    probabilities, len(classes), settings["bootstrap"], params["seed"])
        return {**result, **backbone_weights(backbone)}

    results, sections, notes = {}, {}, []
    with dataset.ImageStore(Path(prepared_dir) / dataset.IMAGES_FILE) as store:
        for kind in KINDS:
            if not is_enabled(kind, models_dir):
                with steps.step("figures", f"{kind}: pictures saying it is turned off"):
                    write_turned_off(plots_dir / kind, classes, f"{kind}: turned off (finetune.enabled: false)")
                log.info("%s: turned off (finetune.enabled: false), not evaluated", kind)
                continue
            with steps.step("loading models", f"loading the {kind} model"):
                classifier = load_classifier(kind, models_dir, with_backbone=False)
            if classifier.classes != classes:
                raise outdated(f"models/{kind}.keras", f"was trained on classes {classifier.classes}, but the "
                                                      f"prepared data has {classes}")
            title = classifier.title
            with steps.step("predictions", f"{title}: predicting the {len(rows)} test images"):
                if kind != "head":  # the CNN and the fine-tuned model take the images themselves
                    probabilities = batched_probabilities(
                        classifier.probabilities, store.batches(rows, params[_SECTION[kind]]["batch_size"]),
                        len(rows), len(classes))
                else:
                    features = features_of_rows(features_dir, "test", rows)
                    size = params["head"]["batch_size"]
                    probabilities = batched_probabilities(
                        classifier.from_features, (features[i:i + size] for i in range(0, len(features), size)),
                        len(rows), len(classes))
            results[kind] = scored(probabilities, classifier.info.get(BackboneRecipe.RECORD_KEY) if kind != "cnn"
                                   else None, title)
            # 1.0: not calibrated (head.calibrate / cnn.calibrate false, or a model saved before).
            results[kind]["temperature"] = classifier.info.get("temperature", 1.0)
            if results[kind]["random_weights"]:
                title += " (random weights)"
            results[kind]["notes"] = model_notes(title, results[kind], probabilities.argmax(axis=1), classes)
            notes += results[kind]["notes"]
            sections[kind] = {"title": title, "metrics": results[kind], "notes": results[kind]["notes"],
                              "report": classification_report(labels, probabilities, classes)}
            out = plots_dir / kind
            write_predictions(out / "predictions.csv", paths, labels, probabilities, classes)
            with steps.step("figures", f"{title}: drawing the confusion matrix, training curves and mistakes"):
                plot_confusion(out / "confusion.png", labels, probabilities, classes,
                               f"{title}: accuracy {results[kind]['accuracy']:.3f}, "
                               f"balanced {results[kind]['balanced_accuracy']:.3f}")
                plot_curves(out / "curves.png", out / "history.csv", f"{title}: training curves")
                plot_mistakes(out / "mistakes.png", store, rows, labels, probabilities, classes,
                              settings["mistakes"], title)
            log.info("%s: accuracy %.4f, balanced accuracy %.4f, macro-F1 %.4f, %.1f%% under %.2f", title,
                     results[kind]["accuracy"], results[kind]["balanced_accuracy"], results[kind]["macro_f1"],
                     100 * results[kind]["low_confidence"]["share"], threshold)

    # The baseline the head has to beat: a logistic regression on the same cached training features.
    title = "Baseline: logistic regression on the same features"
    with steps.step("baseline", "fitting the baseline (logistic regression) on the training features"):
        train_x, train_y = load_split(features_dir, "train")
        probabilities = baseline_probabilities(fit_baseline(train_x, train_y, params["seed"]),
                                               features_of_rows(features_dir, "test", rows), len(classes))
    results["baseline"] = scored(probabilities, features_backbone, title)
    if results["baseline"]["random_weights"]:
        title += " (random weights)"
    results["baseline"]["notes"] = model_notes(title, results["baseline"], probabilities.argmax(axis=1), classes)
    notes += results["baseline"]["notes"]
    sections["baseline"] = {"title": title, "metrics": results["baseline"], "notes": results["baseline"]["notes"],
                            "report": classification_report(labels, probabilities, classes)}
    log.info("baseline (logistic regression): accuracy %.4f, balanced accuracy %.4f, macro-F1 %.4f",
             results["baseline"]["accuracy"], results["baseline"]["balanced_accuracy"], results["baseline"]["macro_f1"])

    smote = json.loads(Path(smote_path).read_text()) if Path(smote_path).is_file() else None
    suspects = suspects_line(suspects_path)
    write_report(report_path, sections, smote, suspects)
    cv = read_cv(cv_path)
    metrics_dir = Path(metrics_path).parent
    # Per-class scores in a file of their own, and every score in test.json: plain outputs. The
    # metrics DVC shows and diffs are the headline files, one per model, so the table fits a terminal.
    write_json(metrics_dir / PER_CLASS_PATH.name, {kind: result["per_class"] for kind, result in results.items()})
    write_json(metrics_path, {kind: {k: v for k, v in result.items() if k != "per_class"}
                              for kind, result in results.items()})
    for kind in (*KINDS, "baseline"):
        # A model that was turned off still gets its file (DVC wants every metrics file): empty, a row of dashes.
        write_json(metrics_dir / f"{kind}.json", shown_metrics(results[kind], cv.get(kind)) if kind in results else {})
    titles = {kind: section["title"] for kind, section in sections.items()}
    titles["baseline"] = "baseline (logistic regression)" + (" (random weights)" if results["baseline"]["random_weights"]
                                                             else "")
    log_summary(results, titles, cv, notes, report_path, plots_dir, suspects)
    log.info("evaluate took %.1f s: %s", time.perf_counter() - started, steps.line())
    return results


def log_summary(results, titles, cv, notes, report_path, plots_dir, suspects=None):
    """What happened, in a few lines: the scores table, what to be wary of, the suspect labels, and the files to open."""
    log.info("test split, %d images (brackets: 95 %% intervals):\n%s",
             next(iter(results.values()))["test_images"], summary_table(results, titles, cv))
    head = results.get("head")
    if head is not None and not head["random_weights"]:
        log.info("the head used %s features with weights %s", head["backbone"], head["weights"])
    for note in notes:
        log.warning("note: %s", note)
    if suspects is not None:
        log.info("%s", suspects)
    pictures = sorted(str(path) for path in Path(plots_dir).glob("*/*.png"))
    log.info("open: %s, %s (or `dvc plots show`)", report_path, ", ".join(pictures))


def main():
    evaluate(load_params())


if __name__ == "__main__":
    run_stage(main)
