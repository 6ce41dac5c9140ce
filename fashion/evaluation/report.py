"""What the evaluate stage writes and says: the headline metrics `dvc metrics show` lists, notes on scores
not to trust, metrics/report.md, the predictions CSV DVC's confusion plot reads, and the closing summary.
"""

import contextlib
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from fashion.atomic import atomic_file
from fashion.data.exclusions import read_suspects
from fashion.evaluation.intervals import METRICS as HEADLINE
from fashion.features.frozen_backbone import is_random
from fashion.models.training import TEMPERATURE_BOUNDS, at_temperature_bound

log = logging.getLogger(__name__)

HEADLINE_KEYS = {"accuracy": "acc", "balanced_accuracy": "bal_acc", "macro_f1": "f1"}


def shown_metrics(result, cv=None):
    """The few numbers of one model that `dvc metrics show` lists: rounded to 3 places, short keys.

    acc, bal_acc with its 95 % interval (bal_lo, bal_hi), f1 (macro) and, where the crossval stage
    scored this model, cv_bal and cv_sd: the cross-validated balanced accuracy, mean and sd; where the decide
    stage chose its threshold, auto_cov and auto_acc: the share of test photos at or above it and their accuracy.
    """
    out = {}
    for name, short in HEADLINE_KEYS.items():
        out[short] = round(result[name], 3)
        if name == "balanced_accuracy" and f"{name}_ci" in result:
            out["bal_lo"], out["bal_hi"] = (round(value, 3) for value in result[f"{name}_ci"])
    decision = result.get("decision")
    if decision is not None:  # what the model's chosen threshold realises on the test split
        out["auto_cov"] = round(decision["test"]["coverage"], 3)
        accuracy = decision["test"]["accuracy"]
        out["auto_acc"] = None if accuracy is None else round(accuracy, 3)
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


def write_predictions(path, paths, labels, probabilities, classes):
    """One row per test image: DVC's confusion template reads `actual` and `predicted`."""
    predicted = probabilities.argmax(axis=1)
    with atomic_file(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "actual", "predicted", "confidence"] + [f"p_{name}" for name in classes])
        for i, source in enumerate(paths):
            writer.writerow([source, classes[labels[i]], classes[predicted[i]], f"{probabilities[i].max():.6f}"]
                            + [f"{p:.6f}" for p in probabilities[i]])


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
                  *decision_lines(m.get("decision")), "", "```", section["report"].rstrip(), "```", ""]
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


def decision_lines(decision):
    """The model's chosen threshold in the report: where it was chosen, what it expected, what the test split gave."""
    if decision is None:
        return []
    if decision["threshold"] is None:
        return ["", f"No threshold reaches accuracy {decision['target_accuracy']:g} "
                    f"({decision['expected'].get('source')}): every photo goes to review."]
    test, expected = decision["test"], decision["expected"]

    def interval(key):
        return "" if not test.get(f"{key}_ci") else " [{:.3f}, {:.3f}]".format(*test[f"{key}_ci"])

    return ["", f"Chosen threshold {decision['threshold']:.4f} for accuracy {decision['target_accuracy']:g} "
                f"({expected.get('source')}: coverage {_maybe(_first(expected, 'coverage_mean', 'coverage'))}, "
                f"accuracy {_maybe(_first(expected, 'accuracy_mean', 'accuracy'))}); on the test split "
                f"coverage {test['coverage']:.3f}{interval('coverage')}, accuracy {_maybe(test['accuracy'])}"
                f"{interval('accuracy')}."]


def _maybe(value):
    return "n/a" if value is None else f"{value:.3f}"


def _first(record, *keys):
    """The first of the keys whose value is not None (a cross-validated rule has means, a validation one not)."""
    return next((record[key] for key in keys if record.get(key) is not None), None)


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
    log.info("open: %s, and in %s: %s (or `dvc plots show`)", report_path, plots_dir, "; ".join(
        f"{kind}/ {', '.join(sorted(p.name for p in (Path(plots_dir) / kind).glob('*.png')))}" for kind in results
        if any((Path(plots_dir) / kind).glob("*.png"))))


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
