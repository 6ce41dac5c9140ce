"""The `evaluate` stage: every model and the baseline on the held-out test split, as DVC metrics and plots.

Predictions and labels come from the same ordered arrays: the test rows of the manifest (for the CNN,
read from the image store in that order) and the test features of the extract stage. Nothing is
shuffled, so row i of the predictions is row i of the labels by construction.

The models are the custom CNN, the head, the fine-tuned backbone when fine-tuning is on (when off,
its files say so and its metrics file is empty) and the baseline. Writes metrics/<model>.json (the
headline numbers `dvc metrics show` lists), metrics/test.json (every score, with 95 % intervals),
metrics/per_class.json, metrics/report.md and, per model, plots/<model>/predictions.csv plus
confusion.png, curves.png and mistakes.png (fashion/evaluation/: scores, report, plots). Where the decide stage
has chosen a model's threshold (metrics/decisions.json), the accuracy and coverage it realises on the test split
with 95 % intervals, the risk-coverage curves (plots/<model>/risk_coverage.csv, plots/risk_coverage.png,
plots/chosen_thresholds.csv) and the share of test photos the novelty check calls unfamiliar
(fashion/evaluation/selective.py).
"""

import json
import logging
import time

from fashion.atomic import check_writable, write_json
from fashion.data import dataset
from fashion.data.recipes import BackboneRecipe
from fashion.errors import outdated
from fashion.evaluation.plots import plot_confusion, plot_curves, plot_mistakes, plot_risk_coverage, write_turned_off
from fashion.evaluation.report import (
    StepTimer,
    backbone_weights,
    log_summary,
    model_notes,
    read_cv,
    shown_metrics,
    suspects_line,
    write_predictions,
    write_report,
)
from fashion.evaluation.scores import (
    batched_probabilities,
    classification_report,
    read_test_split,
    score,
    with_intervals,
)
from fashion.evaluation.selective import read_curve, read_rules, realised, unfamiliar_share, write_chosen, write_curve
from fashion.features.familiarity import load_familiarity
from fashion.features.store import features_of_rows, load_split, read_info
from fashion.models.baseline import baseline_probabilities, fit_baseline
from fashion.paths import Paths
from fashion.serving.classify import KINDS, is_enabled, load_classifier

log = logging.getLogger(__name__)


# The params section whose batch_size a model's test images go through in.
_SECTION = {"cnn": "cnn", "finetuned": "finetune"}


def evaluate(params, paths=Paths(), test_rows=None):
    """Score every model on the test split and write metrics, report and plots.

    test_rows: (rows, labels, photo paths), by default the manifest's test split; tests pass a permutation.
    """
    prepared_dir, features_dir, models_dir, plots_dir = paths.prepared, paths.features, paths.models, paths.plots
    metrics_path, report_path = paths.test, paths.report
    check_writable(metrics_path, report_path, *(paths.plot_folder(kind) / "predictions.csv" for kind in KINDS))
    started = time.perf_counter()
    steps = StepTimer(log)
    settings = params.evaluate
    threshold, bins = settings.confidence_threshold, settings.calibration_bins
    summary = dataset.read_summary(prepared_dir)
    classes = summary["classes"]
    rows, labels, photos = read_test_split(prepared_dir) if test_rows is None else test_rows
    features_backbone = read_info(features_dir).get(BackboneRecipe.RECORD_KEY)

    rules = read_rules(paths.decisions_metrics)
    # the novelty check does not depend on the model: the same share of test photos for each
    unfamiliar = unfamiliar_share(load_familiarity(paths.decisions), features_of_rows(features_dir, "test", rows))

    def scored(probabilities, backbone, title, kind):
        """Every score of one model, its 95 % intervals, the backbone weights behind it, and its notes; its
        decision rule on the test split and its risk-coverage curve."""
        with steps.step("bootstrap", f"{title}: {settings.bootstrap} bootstrap resamples for the 95 % intervals"):
            result = with_intervals(score(labels, probabilities, classes, threshold, bins), labels,
                                    probabilities, len(classes), settings.bootstrap, params.seed)
            if kind in rules:
                result["decision"] = {**realised(rules[kind], labels, probabilities, settings.bootstrap, params.seed),
                                      "unfamiliar": unfamiliar}
        write_curve(paths.risk_coverage(kind), labels, probabilities)
        return {**result, **backbone_weights(backbone)}

    results, sections, notes = {}, {}, []
    with dataset.ImageStore(prepared_dir / dataset.IMAGES_FILE) as store:
        for kind in KINDS:
            if not is_enabled(kind, models_dir):
                with steps.step("figures", f"{kind}: pictures saying it is turned off"):
                    write_turned_off(paths.plot_folder(kind), classes, f"{kind}: turned off (finetune.enabled: false)")
                    write_curve(paths.risk_coverage(kind), labels, [])
                log.info("%s: turned off (finetune.enabled: false), not evaluated", kind)
                continue
            with steps.step("loading models", f"loading the {kind} model"):
                classifier = load_classifier(kind, models_dir, with_backbone=False)
            if classifier.classes != classes:
                raise outdated(paths.model(kind), f"was trained on classes {classifier.classes}, but the "
                                                      f"prepared data has {classes}")
            title = classifier.title
            with steps.step("predictions", f"{title}: predicting the {len(rows)} test images"):
                if kind != "head":  # the CNN and the fine-tuned model take the images themselves
                    probabilities = batched_probabilities(
                        classifier.probabilities, store.batches(rows, getattr(params, _SECTION[kind]).batch_size),
                        len(rows), len(classes))
                else:
                    features = features_of_rows(features_dir, "test", rows)
                    size = params.head.batch_size
                    probabilities = batched_probabilities(
                        classifier.from_features, (features[i:i + size] for i in range(0, len(features), size)),
                        len(rows), len(classes))
            results[kind] = scored(probabilities, classifier.info.get(BackboneRecipe.RECORD_KEY) if kind != "cnn"
                                   else None, title, kind)
            # 1.0: not calibrated (head.calibrate / cnn.calibrate false, or a model saved before).
            results[kind]["temperature"] = classifier.info.get("temperature", 1.0)
            if results[kind]["random_weights"]:
                title += " (random weights)"
            results[kind]["notes"] = model_notes(title, results[kind], probabilities.argmax(axis=1), classes)
            notes += results[kind]["notes"]
            sections[kind] = {"title": title, "metrics": results[kind], "notes": results[kind]["notes"],
                              "report": classification_report(labels, probabilities, classes)}
            out = paths.plot_folder(kind)
            write_predictions(out / "predictions.csv", photos, labels, probabilities, classes)
            with steps.step("figures", f"{title}: drawing the confusion matrix, training curves and mistakes"):
                plot_confusion(out / "confusion.png", labels, probabilities, classes,
                               f"{title}: accuracy {results[kind]['accuracy']:.3f}, "
                               f"balanced {results[kind]['balanced_accuracy']:.3f}")
                plot_curves(out / "curves.png", out / "history.csv", f"{title}: training curves")
                plot_mistakes(out / "mistakes.png", store, rows, labels, probabilities, classes,
                              settings.mistakes, title)
            log.info("%s: accuracy %.4f, balanced accuracy %.4f, macro-F1 %.4f, %.1f%% under %.2f", title,
                     results[kind]["accuracy"], results[kind]["balanced_accuracy"], results[kind]["macro_f1"],
                     100 * results[kind]["low_confidence"]["share"], threshold)

    # The baseline the head has to beat: a logistic regression on the same cached training features.
    title = "Baseline: logistic regression on the same features"
    with steps.step("baseline", "fitting the baseline (logistic regression) on the training features"):
        train_x, train_y = load_split(features_dir, "train")
        probabilities = baseline_probabilities(fit_baseline(train_x, train_y, params.seed),
                                               features_of_rows(features_dir, "test", rows), len(classes))
    results["baseline"] = scored(probabilities, features_backbone, title, "baseline")
    if results["baseline"]["random_weights"]:
        title += " (random weights)"
    results["baseline"]["notes"] = model_notes(title, results["baseline"], probabilities.argmax(axis=1), classes)
    notes += results["baseline"]["notes"]
    sections["baseline"] = {"title": title, "metrics": results["baseline"], "notes": results["baseline"]["notes"],
                            "report": classification_report(labels, probabilities, classes)}
    log.info("baseline (logistic regression): accuracy %.4f, balanced accuracy %.4f, macro-F1 %.4f",
             results["baseline"]["accuracy"], results["baseline"]["balanced_accuracy"], results["baseline"]["macro_f1"])

    write_decision_plots(paths, results, titles_of(sections), settings.target_accuracy)

    smote = json.loads(paths.smote.read_text()) if paths.smote.is_file() else None
    suspects = suspects_line(paths.suspects)
    write_report(report_path, sections, smote, suspects)
    cv = read_cv(paths.cv)
    # Per-class scores in a file of their own, and every score in test.json: plain outputs. The
    # metrics DVC shows and diffs are the headline files, one per model, so the table fits a terminal.
    write_json(paths.per_class, {kind: result["per_class"] for kind, result in results.items()})
    write_json(metrics_path, {kind: {k: v for k, v in result.items() if k != "per_class"}
                              for kind, result in results.items()})
    for kind in (*KINDS, "baseline"):
        # A model that was turned off still gets its file (DVC wants every metrics file): empty, a row of dashes.
        write_json(paths.model_metrics(kind), shown_metrics(results[kind], cv.get(kind)) if kind in results else {})
    titles = {kind: section["title"] for kind, section in sections.items()}
    titles["baseline"] = "baseline (logistic regression)" + (" (random weights)" if results["baseline"]["random_weights"]
                                                             else "")
    log_summary(results, titles, cv, notes, report_path, plots_dir, suspects)
    log.info("evaluate took %.1f s: %s", time.perf_counter() - started, steps.line())
    return results




def titles_of(sections):
    return {kind: section["title"] for kind, section in sections.items()}


def write_decision_plots(paths, results, titles, target):
    """The risk-coverage PNG of every model, each chosen threshold marked, and the chosen points as a table."""
    decisions = {kind: result["decision"] for kind, result in results.items() if "decision" in result}
    write_chosen(paths.chosen_thresholds, decisions)
    plot_risk_coverage(paths.risk_coverage_png, {titles[kind]: read_curve(paths.risk_coverage(kind)) for kind in results},
                       {titles[kind]: (d["test"]["coverage"], d["test"]["accuracy"]) for kind, d in decisions.items()},
                       target)
