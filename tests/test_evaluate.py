"""The evaluate stage: scores equal scikit-learn's, order cannot matter, outputs are complete and readable."""

import csv
import json
import shutil
import time

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics

from fashion.errors import PipelineError
from fashion.evaluation.evaluate import evaluate
from fashion.evaluation.scores import expected_calibration_error, read_test_split, score
from fashion.paths import Paths
from fashion.serving.classify import best_model
from tests.helpers import make_params

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

CLASSES = ["a", "b", "c"]
# Hand-made: 10 images, 3 classes, some right, some wrong, one class never predicted correctly.
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PROBABILITIES = np.array([
    [0.90, 0.05, 0.05],
    [0.60, 0.30, 0.10],
    [0.20, 0.70, 0.10],
    [0.85, 0.10, 0.05],
    [0.10, 0.80, 0.10],
    [0.50, 0.45, 0.05],
    [0.05, 0.90, 0.05],
    [0.30, 0.30, 0.40],
    [0.10, 0.85, 0.05],
    [0.20, 0.20, 0.60],
])


# --- scores ------------------------------------------------------------------------------

def test_scores_equal_scikit_learn_on_hand_made_predictions():
    result = score(LABELS, PROBABILITIES, CLASSES, threshold=0.8)
    predicted = PROBABILITIES.argmax(1)

    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(LABELS, predicted), abs=1e-6)
    assert result["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(LABELS, predicted), abs=1e-6)
    assert result["macro_f1"] == pytest.approx(metrics.f1_score(LABELS, predicted, average="macro"), abs=1e-6)
    assert result["log_loss"] == pytest.approx(metrics.log_loss(LABELS, PROBABILITIES), abs=1e-6)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(LABELS, predicted)
    for i, name in enumerate(CLASSES):
        assert result["per_class"][name] == pytest.approx(
            {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": support[i]}, abs=1e-6)
    # and the numbers themselves, by hand: 7 of 10 right; recalls 3/4, 2/3, 2/3
    assert result["accuracy"] == 0.7
    assert result["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3, abs=1e-6)
    assert result["test_images"] == 10


def test_low_confidence_share_and_accuracy_above_and_below_the_threshold():
    result = score(LABELS, PROBABILITIES, CLASSES, threshold=0.8)["low_confidence"]
    # top probabilities >= 0.8: rows 0, 3, 4, 6, 8 (row 8 is wrong); under: 1, 2, 5, 7, 9 (rows 2, 5 wrong)
    assert result == {"threshold": 0.8, "share": 0.5, "accuracy_above": 0.8, "accuracy_below": 0.6}
    # exactly at the threshold counts as confident: rows 0, 3, 6, 8 at >= 0.85
    at = score(LABELS, PROBABILITIES, CLASSES, threshold=0.85)["low_confidence"]
    assert at["share"] == 0.6
    nobody = score(LABELS, PROBABILITIES, CLASSES, threshold=0.95)["low_confidence"]
    assert nobody["share"] == 1.0 and nobody["accuracy_above"] is None and nobody["accuracy_below"] == 0.7


def test_expected_calibration_error_by_hand():
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    # bin (0.8, 0.9]: 2 images, accuracy 0.5, confidence 0.9; bin (0.5, 0.6]: 2 images, accuracy 1, confidence 0.6
    assert expected_calibration_error(labels, probabilities, bins=10) == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)
    perfect = np.eye(2)[labels]
    assert expected_calibration_error(labels, perfect, bins=10) == 0


def test_empty_test_split_and_mismatched_shapes_are_clear_errors():
    with pytest.raises(PipelineError, match="test split is empty"):
        score(np.array([], dtype=int), np.zeros((0, 3)), CLASSES)
    with pytest.raises(PipelineError, match="do not match"):
        score(LABELS, PROBABILITIES[:, :2], CLASSES)


# --- the stage on a real tiny run ------------------------------------------------------------

def read_metrics(folder):
    """test.json with each model's per_class scores from per_class.json put back in."""
    results = json.loads((folder / "test.json").read_text())
    per_class = json.loads((folder / "per_class.json").read_text())
    return {kind: {**section, "per_class": per_class[kind]} for kind, section in results.items()}


def read_predictions(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_metrics_hold_every_model_with_readable_names(trained):
    params, root = trained
    results = read_metrics(root / "metrics")
    assert "per_class" not in json.loads((root / "metrics/test.json").read_text())["cnn"]  # keeps exp show narrow
    _, labels, _ = read_test_split(root / "data/prepared")
    classes = json.loads((root / "data/prepared/summary.json").read_text())["classes"]
    for kind in ("cnn", "head", "finetuned"):
        section = results[kind]
        assert {"accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece", "low_confidence",
                "per_class", "test_images"} <= set(section)
        assert section["test_images"] == len(labels)
        assert sorted(section["per_class"]) == sorted(classes)
        assert sum(c["support"] for c in section["per_class"].values()) == len(labels)
        assert section["low_confidence"]["threshold"] == params.evaluate.confidence_threshold


def test_every_model_and_the_baseline_carry_95_percent_intervals(trained):
    params, root = trained
    results = json.loads((root / "metrics/test.json").read_text())
    assert list(results) == ["cnn", "head", "finetuned", "baseline"]
    for kind, section in results.items():
        for name in ("accuracy", "balanced_accuracy", "macro_f1"):
            low, high = section[f"{name}_ci"]
            assert 0 <= low <= section[name] <= high <= 1, (kind, name)
            if 0 < section[name] < 1:  # a handful of test images: the interval is wide, as it should be
                assert high - low > 0.05, (kind, name)
    report = (root / "metrics/report.md").read_text()
    assert "## Baseline: logistic regression on the same features" in report
    low, high = results["head"]["balanced_accuracy_ci"]
    assert f"balanced accuracy {results['head']['balanced_accuracy']:.3f} [{low:.3f}, {high:.3f}]" in report


def test_the_baseline_is_a_balanced_logistic_regression_on_the_cached_training_features(trained):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    params, root = trained
    with np.load(root / "data/features/train.npz") as train, np.load(root / "data/features/test.npz") as test:
        scaler = StandardScaler().fit(train["features"])
        model = LogisticRegression(class_weight="balanced", max_iter=1000, random_state=params.seed)
        model.fit(scaler.transform(train["features"]), train["labels"])
        expected = balanced_accuracy_score(test["labels"], model.predict(scaler.transform(test["features"])))
    assert json.loads((root / "metrics/test.json").read_text())["baseline"]["balanced_accuracy"] == \
        pytest.approx(expected, abs=1e-6)


def test_saved_predictions_reproduce_the_metrics(trained):
    """predictions.csv holds, per test image in manifest order, what the metrics were computed from."""
    params, root = trained
    results = json.loads((root / "metrics/test.json").read_text())
    rows, labels, paths = read_test_split(root / "data/prepared")
    classes = json.loads((root / "data/prepared/summary.json").read_text())["classes"]
    for kind in ("cnn", "head", "finetuned"):
        saved = read_predictions(root / "plots" / kind / "predictions.csv")
        assert [r["path"] for r in saved] == paths
        assert [r["actual"] for r in saved] == [classes[i] for i in labels]
        probabilities = np.array([[float(r[f"p_{name}"]) for name in classes] for r in saved])
        assert [r["predicted"] for r in saved] == [classes[i] for i in probabilities.argmax(1)]
        again = score(labels, probabilities, classes, params.evaluate.confidence_threshold)
        assert again["accuracy"] == results[kind]["accuracy"]
        assert again["macro_f1"] == pytest.approx(results[kind]["macro_f1"], abs=1e-6)


def outputs_in(folder, root):
    """Paths reading the run under root but writing metrics into folder and plots into folder/plots."""
    for kind in ("cnn", "head", "finetuned"):  # curves.png reads the training history beside the plots
        (folder / "plots" / kind).mkdir(parents=True)
        shutil.copy(root / "plots" / kind / "history.csv", folder / "plots" / kind / "history.csv")
    for name in ("smote.json", "cv.json", "suspects.csv"):  # what evaluate reads from metrics/
        if (root / "metrics" / name).is_file():
            shutil.copy(root / "metrics" / name, folder / name)
    return Paths(root, metrics=folder, plots=folder / "plots")


def test_one_headline_file_per_model_and_a_summary_at_the_end(trained, tmp_path, caplog):
    """metrics/<model>.json: the numbers `dvc metrics show` lists; the log ends with a table and the files."""
    from fashion.evaluation.crossval import crossval
    from fashion.evaluation.suspects import suspects

    params, root = trained
    paths = outputs_in(tmp_path, root)
    crossval(make_params(**{"crossval.folds": 2, "crossval.repeats": 1, "crossval.validation": 0.5,
                            "head.epochs": 2}), paths)
    table = suspects(paths)
    with caplog.at_level("INFO", logger="fashion"):
        evaluate(params, paths)

    full, cv = (json.loads((tmp_path / name).read_text()) for name in ("test.json", "cv.json"))
    for kind in ("cnn", "head", "finetuned", "baseline"):
        shown = json.loads((tmp_path / f"{kind}.json").read_text())
        assert shown["acc"] == round(full[kind]["accuracy"], 3)
        assert shown["f1"] == round(full[kind]["macro_f1"], 3)
        assert [shown["bal_lo"], shown["bal_acc"], shown["bal_hi"]] == \
            [round(v, 3) for v in (full[kind]["balanced_accuracy_ci"][0], full[kind]["balanced_accuracy"],
                                   full[kind]["balanced_accuracy_ci"][1])]
        if kind in ("cnn", "finetuned"):  # cross-validation scores the head and the baseline only
            assert "cv_bal" not in shown
        else:
            assert shown["cv_bal"] == round(cv[kind]["balanced_accuracy_mean"], 3)
            assert shown["cv_sd"] == round(cv[kind]["balanced_accuracy_sd"], 3)

    text = caplog.text
    summary = text[text.index("brackets: 95 % intervals"):]
    for title in ("custom CNN", "mobilenet head", "mobilenet fine-tuned", "baseline (logistic regression)"):
        assert title in summary
    assert f"{full['head']['balanced_accuracy']:.3f} [" in summary
    assert "mobilenet_0.25_224_no_top.h5" in text  # the weights the head used
    # the pictures to open, per model folder, and only of the models evaluated
    opened = next(line for line in text.splitlines() if "open: " in line)
    assert f"in {tmp_path / 'plots'}: " in opened and "head/ confusion.png, curves.png" in opened
    suspects_line = f"{len(table)} suspect label(s) among the train + validation photos ({tmp_path / 'suspects.csv'}"
    assert suspects_line in summary
    assert f"## Suspect labels\n\n{suspects_line}" in (tmp_path / "report.md").read_text()


def test_random_backbone_weights_are_in_test_json_the_report_and_beside_the_heads_numbers(trained_random, tmp_path,
                                                                                         caplog):
    params, root = trained_random
    with caplog.at_level("INFO", logger="fashion"):
        evaluate(params, outputs_in(tmp_path, root))
    full = json.loads((tmp_path / "test.json").read_text())
    for kind in ("head", "baseline"):  # the baseline is fitted on the same features
        assert (full[kind]["backbone"], full[kind]["weights"], full[kind]["random_weights"]) == ("mobilenet", "none", True)
        assert any("RANDOM backbone weights" in note for note in full[kind]["notes"])
    assert (full["cnn"]["backbone"], full["cnn"]["random_weights"]) == (None, False)
    report = (tmp_path / "report.md").read_text()
    assert "## mobilenet head (random weights)" in report and "**Random weights**" in report
    summary = caplog.text[caplog.text.index("brackets: 95 % intervals"):]
    head_line = next(line for line in summary.splitlines() if line.startswith("mobilenet head"))
    assert head_line.startswith("mobilenet head (random weights)  ") and f"{full['head']['accuracy']:.3f}" in head_line
    assert "note: mobilenet head (random weights): RANDOM backbone weights" in summary


def test_the_pretrained_run_records_its_weights_file_and_has_no_random_weight_notes(trained):
    _, root = trained
    full = json.loads((root / "metrics/test.json").read_text())
    assert full["head"]["weights"].endswith("mobilenet_0.25_224_no_top.h5") and not full["head"]["random_weights"]
    assert full["finetuned"]["weights"] == full["head"]["weights"]
    assert "random weights" not in (root / "metrics/report.md").read_text().lower()


def test_one_class_for_every_image_and_a_temperature_at_its_bound_get_notes():
    from fashion.evaluation.report import model_notes

    classes = ["a", "b", "c"]
    one_class = model_notes("head", {"temperature": 0.05, "random_weights": False}, np.zeros(9, dtype=int), classes)
    assert len(one_class) == 2
    assert "predicts a for every test image" in one_class[0] and "zero-width intervals" in one_class[0]
    assert "temperature 0.05 at the bound of its search [0.05, 20]" in one_class[1]
    assert model_notes("head", {"temperature": 19.9}, np.arange(9) % 3, classes)[0].startswith("head: softmax temp")
    assert model_notes("head", {"temperature": 1.3, "random_weights": False}, np.arange(9) % 3, classes) == []


def test_evaluate_says_what_a_slow_step_is_doing_and_where_its_time_went(caplog):
    import logging

    from fashion.evaluation.report import StepTimer

    steps = StepTimer(logging.getLogger("fashion.evaluation"), announce_after=0.2)
    with caplog.at_level("INFO", logger="fashion"):
        with steps.step("bootstrap", "head: 1000 bootstrap resamples"):
            time.sleep(0.5)
        with steps.step("figures", "head: drawing"):
            pass
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "head: 1000 bootstrap resamples ..."
    assert messages[1].startswith("head: 1000 bootstrap resamples: done in 0.")
    assert len(messages) == 2  # the quick step says nothing
    assert steps.seconds["bootstrap"] >= 0.5 and steps.line().startswith("bootstrap 0.")


def test_a_permuted_test_set_gives_the_same_metrics(trained, tmp_path):
    """Alignment by construction: shuffle the test images and their labels together, nothing changes."""
    params, root = trained
    rows, labels, paths = read_test_split(root / "data/prepared")
    order = np.random.default_rng(3).permutation(len(rows))
    assert (order != np.arange(len(rows))).any()
    out = outputs_in(tmp_path, root)

    permuted = evaluate(params, out, test_rows=(rows[order], labels[order], [paths[i] for i in order]))

    original = read_metrics(root / "metrics")
    assert read_metrics(tmp_path) == permuted
    assert _same(permuted, original), _differences(permuted, original)
    for kind in ("cnn", "head", "finetuned"):
        before = {r["path"]: r for r in read_predictions(root / "plots" / kind / "predictions.csv")}
        after = read_predictions(tmp_path / "plots" / kind / "predictions.csv")
        assert [r["path"] for r in after] == [paths[i] for i in order]
        for r in after:
            assert r["predicted"] == before[r["path"]]["predicted"]
            assert float(r["confidence"]) == pytest.approx(float(before[r["path"]]["confidence"]), abs=1e-5)


def _differences(a, b, where=""):
    """The keys where two nested metrics differ, with both values: the failure message of _same."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a.keys() | b.keys() for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    return [] if _same(a, b) else [(where, a, b)]


def _same(a, b):
    """Equal nested metrics, floats to one unit of their 6th decimal (summation order may change the last digit
    of log loss; 1.244731 - 1.24473 is a little over 1e-6 in binary floating point)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1.5e-6
    return a == b


def test_labels_out_of_step_with_the_images_change_the_metrics(trained, tmp_path):
    """The check above can fail: misaligned labels (the original notebooks' bug) give other numbers."""
    params, root = trained
    rows, labels, paths = read_test_split(root / "data/prepared")
    out = outputs_in(tmp_path, root)
    shifted = np.roll(labels, 1)
    misaligned = evaluate(params, out, test_rows=(rows, shifted, paths))
    original = read_metrics(root / "metrics")
    assert not _same(misaligned, original)


def test_report_and_png_plots(trained):
    _, root = trained
    report = (root / "metrics/report.md").read_text()
    assert "## custom CNN" in report and "## mobilenet head" in report and "## mobilenet fine-tuned" in report
    assert report.count("precision    recall  f1-score   support") == 4  # cnn, head, fine-tuned, baseline
    assert "## SMOTE" in report and "| class | before | after |" in report
    for kind in ("cnn", "head", "finetuned"):
        for name in ("confusion", "curves", "mistakes"):
            with Image.open(root / "plots" / kind / f"{name}.png") as image:
                assert image.format == "PNG" and min(image.size) > 100
                pixels = np.asarray(image.convert("L"))
            assert pixels.std() > 5, f"{kind}/{name}.png looks blank"


def test_the_default_model_is_the_best_by_cross_validation_never_by_the_test_split(tmp_path):
    test, cv = tmp_path / "test.json", tmp_path / "cv.json"
    assert best_model(test) is None  # no cross-validation yet: the commands fall back to the head
    # The test split would pick the CNN; cross-validation, which does not cover the CNN, picks among the others.
    test.write_text(json.dumps({"cnn": {"balanced_accuracy": 0.99, "macro_f1": 0.99},
                                "head": {"balanced_accuracy": 0.5, "macro_f1": 0.5},
                                "finetuned": {"balanced_accuracy": 0.9, "macro_f1": 0.9}}))
    cv.write_text(json.dumps({"head": {"balanced_accuracy_mean": 0.7, "macro_f1_mean": 0.6},
                              "baseline": {"balanced_accuracy_mean": 0.9, "macro_f1_mean": 0.9}, "folds": 5}))
    assert best_model(test) == "head"  # the baseline is not served
    cv.write_text(json.dumps({"head": {"balanced_accuracy_mean": 0.7, "macro_f1_mean": 0.6},
                              "finetuned": {"balanced_accuracy_mean": 0.71, "macro_f1_mean": 0.5}}))
    assert best_model(test) == "finetuned"
    cv.write_text("not json")
    assert best_model(test) is None


def test_missing_model_is_a_clear_error(trained, tmp_path):
    params, root = trained
    with pytest.raises(PipelineError, match=r"cnn.keras not found \(no trained cnn model\); run `dvc repro` first"):
        evaluate(params, Paths(root, models=tmp_path, metrics=tmp_path / "metrics", plots=tmp_path / "plots"))
    assert not (tmp_path / "metrics/test.json").exists()


def test_evaluate_params_are_validated():
    with pytest.raises(PipelineError, match="evaluate.confidence_threshold"):
        make_params(**{"evaluate.confidence_threshold": 1.5})
    with pytest.raises(PipelineError, match="evaluate.mistakes"):
        make_params(**{"evaluate.mistakes": -1})
