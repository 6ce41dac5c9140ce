"""Thresholds chosen for an accuracy (the decide stage), what evaluate says of them, and the decisions predict
and serve give: by hand on small numbers, and on a real tiny run (the `decided` fixture)."""

import csv
import io
import json
import shutil

import numpy as np
import pytest

from fashion.errors import PipelineError
from fashion.evaluation.coverage import (
    choose_threshold,
    coverage_at,
    coverage_intervals,
    risk_coverage,
    with_temperature,
)
from fashion.params import validate
from fashion.serving.classify import classify, load_classifier
from fashion.serving.decision import AUTO, REVIEW, UNFAMILIAR, load_rule
from fashion.serving.predict import run
from fashion.serving.table import find_images
from tests.helpers import make_params, override

CONFIDENCE = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
CORRECT = np.array([True, True, False, True, False])


# --- by hand ------------------------------------------------------------------------------------

def test_the_lowest_threshold_that_reaches_the_target_is_chosen():
    # accuracy of the photos at or above each threshold: 1, 1, 2/3, 3/4, 3/5
    thresholds, coverage, accuracy = risk_coverage(CONFIDENCE, CORRECT)
    assert thresholds.tolist() == [0.9, 0.8, 0.7, 0.6, 0.5]
    assert accuracy.tolist() == pytest.approx([1, 1, 2 / 3, 3 / 4, 3 / 5])
    assert coverage.tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    chosen = choose_threshold(CONFIDENCE, CORRECT, 0.75)
    assert chosen == {"threshold": 0.6, "coverage": 0.8, "accuracy": 0.75, "reached": True}
    assert choose_threshold(CONFIDENCE, CORRECT, 0.76)["threshold"] == 0.8  # 0.7 and 0.6 fall short
    assert choose_threshold(CONFIDENCE, CORRECT, 0.5)["threshold"] == 0.5  # everything answered


def test_no_threshold_reaching_the_target_answers_nothing():
    chosen = choose_threshold(CONFIDENCE, ~CORRECT, 0.9)  # the most confident photo is wrong
    assert chosen["threshold"] is None and chosen["reached"] is False and chosen["coverage"] == 0.0
    assert chosen["best_accuracy"] == pytest.approx(0.4)  # all answered: two of five
    assert coverage_at(CONFIDENCE, CORRECT, None) == (0.0, None)


def test_photos_with_the_same_confidence_are_answered_together():
    thresholds, coverage, accuracy = risk_coverage([0.9, 0.7, 0.7, 0.5], [True, True, False, True])
    assert thresholds.tolist() == [0.9, 0.7, 0.5] and coverage.tolist() == [0.25, 0.75, 1.0]
    # at 0.7 both photos count (2 of 3 right); at 0.5, 3 of 4
    assert choose_threshold([0.9, 0.7, 0.7, 0.5], [True, True, False, True], 0.75)["threshold"] == 0.5
    assert choose_threshold([0.9, 0.7, 0.7, 0.5], [True, True, False, True], 0.76)["threshold"] == 0.9


def test_the_bootstrap_intervals_hold_the_estimate_and_are_deterministic():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    confidence = rng.random(300)
    correct = rng.random(300) < confidence  # the more confident, the more often right
    share, accuracy = coverage_at(confidence, correct, 0.5)
    intervals = coverage_intervals(labels, confidence, correct, 0.5, 500, seed=1)
    assert intervals["coverage"][0] < share < intervals["coverage"][1]
    assert intervals["accuracy"][0] < accuracy < intervals["accuracy"][1]
    assert intervals["accuracy"][1] - intervals["accuracy"][0] < 0.15
    assert coverage_intervals(labels, confidence, correct, 0.5, 500, seed=1) == intervals
    assert coverage_intervals(labels, confidence, correct, 0.5, 0, seed=1) is None


def test_a_temperature_rescales_probabilities_as_it_would_the_logits():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for t in (0.5, 1.0, 3.0):
        expected = np.exp(logits / t) / np.exp(logits / t).sum(1, keepdims=True)
        np.testing.assert_allclose(with_temperature(softmax, t), expected, atol=1e-9)


def test_target_accuracy_and_the_novelty_settings_are_validated():
    params = make_params()
    assert params.evaluate.target_accuracy == 0.9
    for key, value in (("evaluate.target_accuracy", 0), ("evaluate.target_accuracy", 1.5),
                       ("evaluate.unfamiliar.quantile", 0.3), ("evaluate.unfamiliar.neighbours", 0)):
        with pytest.raises(PipelineError, match=key.replace(".", r"\.")):
            validate(override(params.model_dump(), {key: value}))


# --- the stage on a real tiny run -------------------------------------------------------------------

@pytest.mark.shared_data
def test_each_model_gets_a_threshold_that_reaches_the_target_on_its_own_data(decided):
    params, root = decided
    written = json.loads((root / "metrics/decisions.json").read_text())
    assert written["target_accuracy"] == params.evaluate.target_accuracy
    rules = written["models"]
    assert {"head", "baseline", "cnn", "finetuned"} <= set(rules)
    # crossval covers the fine-tuned model when it is on: its threshold comes from its out-of-fold probabilities too
    assert rules["head"]["source"] == rules["baseline"]["source"] == rules["finetuned"]["source"] == "crossval"
    assert rules["cnn"]["source"] == "validation"
    assert "validation" in rules["cnn"]["note"]
    # recomputed from crossval's out-of-fold probabilities, on the head's calibrated scale
    with open(root / "metrics/cv_oof.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["model"] == "head"]
    classes = [name[2:] for name in rows[0] if name.startswith("p_")]
    probabilities = with_temperature(np.array([[float(row[f"p_{c}"]) for c in classes] for row in rows]),
                                     rules["head"]["temperature"])
    labels = np.array([classes.index(row["label"]) for row in rows])
    again = choose_threshold(probabilities.max(1), probabilities.argmax(1) == labels, params.evaluate.target_accuracy)
    assert {key: rules["head"][key] for key in again} == again
    if again["reached"]:
        assert again["accuracy"] >= params.evaluate.target_accuracy
        assert rules["head"]["coverage_sd"] is not None and rules["head"]["folds"] == 2
    for kind in ("cnn", "head", "finetuned"):
        saved = json.loads((root / f"models/decisions/{kind}.json").read_text())
        assert saved["threshold"] == rules[kind]["threshold"] and len(saved["model_sha256"]) == 64


@pytest.mark.shared_data
def test_evaluate_records_the_thresholds_on_the_test_split_with_intervals_and_draws_the_curve(decided):
    _, root = decided
    test = json.loads((root / "metrics/test.json").read_text())
    predictions = {}
    for kind in ("cnn", "head", "finetuned", "baseline"):
        decision = test[kind]["decision"]
        assert decision["expected"]["source"] in ("crossval", "validation")
        assert decision["unfamiliar"]["photos"] == test[kind]["test_images"]
        if kind != "baseline":
            with open(root / f"plots/{kind}/predictions.csv", newline="") as handle:
                predictions[kind] = [float(row["confidence"]) for row in csv.DictReader(handle)]
            share = np.mean(np.array(predictions[kind]) >= (decision["threshold"] if decision["threshold"] is not None
                                                             else 2))
            assert decision["test"]["coverage"] == pytest.approx(share, abs=1e-6)
        low, high = decision["test"]["coverage_ci"]
        assert low <= decision["test"]["coverage"] <= high
        shown = json.loads((root / f"metrics/{kind}.json").read_text())
        assert shown["auto_cov"] == round(decision["test"]["coverage"], 3)
        with open(root / f"plots/{kind}/risk_coverage.csv", newline="") as handle:
            curve = list(csv.DictReader(handle))
        coverage = [float(row["coverage"]) for row in curve]
        assert coverage == sorted(coverage) and coverage[-1] == 1.0
    with open(root / "plots/chosen_thresholds.csv", newline="") as handle:
        assert {row["model"] for row in csv.DictReader(handle)} == {"cnn", "head", "finetuned", "baseline"}
    assert (root / "plots/risk_coverage.png").stat().st_size > 10_000
    report = (root / "metrics/report.md").read_text()
    assert report.count("Chosen threshold") + report.count("No threshold reaches") == 4


# --- predict and serve ------------------------------------------------------------------------------

def predict(root, *args):
    out = io.StringIO()
    status = run([*map(str, args), "--models-dir", str(root / "models"), "--metrics", str(root / "metrics/test.json")],
                 out=out)
    return status, out.getvalue()


@pytest.fixture(autouse=True)
def outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml: the model's own rule, or the defaults


@pytest.mark.shared_data
def test_every_answer_carries_the_decision_of_the_models_own_rule(decided):
    _, root = decided
    for kind in ("head", "cnn"):
        rule = load_rule(kind, root / "models")
        status, text = predict(root, root / "photos", "--model", kind, "--format", "json")
        results = json.loads(text)
        assert status == 0 and len(results) == 36
        for r in results:
            unfamiliar = r["novelty"] > rule.familiarity.cutoff
            expected = (UNFAMILIAR if unfamiliar else
                        AUTO if rule.threshold is not None and r["probability"] >= rule.threshold else REVIEW)
            assert r["decision"] == expected
        # the photos the models were trained on (train and validation) are familiar, mostly
        assert np.mean([r["decision"] != UNFAMILIAR for r in results]) > 0.7
    status, text = predict(root, root / "photos", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:4] == ["path", "label", "probability", "decision"]
    assert {row["decision"] for row in rows} <= {AUTO, REVIEW, UNFAMILIAR}
    status, table = predict(root, root / "photos", "--model", "head")
    lines = table.splitlines()
    assert lines[1].startswith("trained on ")  # then the decision rule, whole on one line or wrapped
    decision = next(i for i, line in enumerate(lines) if line.startswith("decision: "))
    wrapped = " ".join(line.strip() for line in lines[decision:] if not line.startswith(("path", "  label")))
    assert wrapped.startswith(f"decision: {load_rule('head', root / 'models').describe()}")
    assert any(line.split()[:4] in (["path", "label", "prob", "decision"], ["label", "prob", "decision", "top"])
               for line in lines)


@pytest.mark.shared_data
def test_threshold_option_overrides_the_rule_and_keeps_the_unfamiliar_check(decided):
    _, root = decided
    _, text = predict(root, root / "photos", "--model", "head", "--format", "json", "--threshold", "0")
    results = json.loads(text)
    assert {r["decision"] for r in results} <= {AUTO, UNFAMILIAR} and any(r["decision"] == AUTO for r in results)
    _, text = predict(root, root / "photos", "--model", "head", "--format", "json", "--threshold", "1")
    assert {r["decision"] for r in json.loads(text)} <= {REVIEW, UNFAMILIAR}


@pytest.mark.shared_data
def test_a_rule_chosen_for_another_model_file_is_a_clear_error(decided, tmp_path):
    _, root = decided
    models = tmp_path / "models"
    shutil.copytree(root / "models", models)
    shutil.copy(models / "cnn.keras", models / "head.keras")  # the head "trained again"
    with pytest.raises(PipelineError, match=r"head.json was chosen for another .*head.keras.*dvc repro"):
        load_rule("head", models)


@pytest.mark.shared_data
def test_without_a_rule_the_threshold_falls_back_to_params_and_the_commands_say_so(decided, tmp_path, caplog):
    _, root = decided
    models = tmp_path / "models"
    shutil.copytree(root / "models", models)
    shutil.rmtree(models / "decisions")
    rule = load_rule("head", models, fallback_threshold=0.8)
    assert rule.threshold == 0.8 and rule.familiarity is None and rule.rule is None
    classifier = load_classifier("head", models)
    results = classify(classifier, find_images([str(root / "photos")])[:4], rule)
    assert all(r["novelty"] is None and r["decision"] in (AUTO, REVIEW) for r in results)
    with caplog.at_level("WARNING"):
        status = run([str(root / "photos"), "--model", "head", "--models-dir", str(models)], out=io.StringIO())
    assert status == 0 and "no decision rule" in caplog.text and "unfamiliar photos are not told" in caplog.text
