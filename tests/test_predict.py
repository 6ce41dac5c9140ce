"""The prediction command with real tiny trained models: same probabilities as evaluate, warnings, bad input."""

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import wcwidth
import yaml
from PIL import Image

from fashion.data.images import load_image
from fashion.data.recipes import FULL_REGION
from fashion.errors import PipelineError
from fashion.models.provenance import describe
from fashion.serving.classify import LOW_CONFIDENCE, classify, load_classifier
from fashion.serving.predict import run
from fashion.serving.table import find_images, render
from tests.corpus import write_bad_files
from tests.helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def predict(root, *args):
    """run() in-process against the tiny trained models: (exit status, stdout)."""
    out = io.StringIO()
    status = run([*map(str, args), "--models-dir", str(root / "models"),
                  "--metrics", str(root / "metrics/test.json")], out=out)
    return status, out.getvalue()


def predict_json(root, *args):
    status, text = predict(root, *args, "--format", "json")
    return status, json.loads(text)


def evaluated(root, kind):
    """path -> {class: probability} as the evaluate stage computed for the test split."""
    with open(root / "plots" / kind / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {r["path"]: {k[2:]: float(v) for k, v in r.items() if k.startswith("p_")} for r in rows}


@pytest.fixture(autouse=True)
def outside_the_repository(tmp_path, monkeypatch):
    """Run from a folder without params.yaml, so the defaults apply unless a test writes one."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("kind", ["cnn", "head", "finetuned"])
def test_probabilities_equal_the_ones_the_evaluate_stage_computed(trained, kind):
    _, root = trained
    expected = evaluated(root, kind)
    files = [root / "photos" / path for path in expected]

    status, results = predict_json(root, *files, "--model", kind)

    assert status == 0
    assert [r["path"] for r in results] == [str(f) for f in files]
    for path, result in zip(expected, results):
        assert result["error"] is None
        assert dict(result["top3"]) == pytest.approx(expected[path], abs=1e-4)
        assert result["label"] == max(expected[path], key=expected[path].get)
        assert result["probability"] == pytest.approx(max(expected[path].values()), abs=1e-4)


def test_the_model_remembers_its_region_and_prediction_applies_it(trained):
    """The fixture's models saw only part of each photo (conftest.TRAINED_REGION); the whole photo
    would give other pixels, so the probabilities above match only because the region is applied."""
    params, root = trained
    region = params.data.region.model_dump()
    assert region != {"top": 0.0, "bottom": 1.0, "left": 0.0, "right": 1.0}
    photo = next(iter(sorted((root / "photos").rglob("*.jpg"))))
    for kind in ("cnn", "head"):
        classifier = load_classifier(kind, root / "models", with_backbone=False)
        assert classifier.preprocessing.region == region
        cut, location = classifier.read(photo)
        assert np.array_equal(cut, load_image(photo, classifier.preprocessing))
        assert location.region == region and location.located is None  # this model does not locate
        whole = load_image(photo, dataclasses.replace(classifier.preprocessing, region=FULL_REGION))
        assert np.abs(cut.astype(int) - whole.astype(int)).mean() > 5


def test_json_fields_and_a_whole_folder_recursively(trained):
    _, root = trained
    status, results = predict_json(root, root / "photos")
    assert status == 0
    assert len(results) == sum(1 for _ in (root / "photos").rglob("*.jpg"))
    classes = set(load_classifier("cnn", root / "models", with_backbone=False).classes)
    for r in results:
        assert list(r) == ["path", "label", "probability", "top3", "low_confidence", "decision", "novelty", "located",
                           "locator", "view", "box", "error", "random_weights"]
        assert r["located"] is None and r["locator"] is None and r["view"] is None  # this model does not locate
        assert r["label"] in classes and r["error"] is None
        assert len(r["top3"]) == 3 and r["top3"][0] == [r["label"], r["probability"]]
        assert [p for _, p in r["top3"]] == sorted((p for _, p in r["top3"]), reverse=True)
        assert r["low_confidence"] == (r["probability"] < 0.8)


def test_default_model_is_the_best_by_cross_validation_not_by_the_test_split(trained, tmp_path):
    _, root = trained
    photo = root / "photos" / next(iter(evaluated(root, "cnn")))
    for better, worse in (("finetuned", "head"), ("head", "finetuned")):
        folder = tmp_path / better
        folder.mkdir()
        # The test split would pick the CNN: it is not asked.
        (folder / "test.json").write_text(json.dumps({"cnn": {"balanced_accuracy": 1.0, "macro_f1": 1.0}}))
        (folder / "cv.json").write_text(json.dumps({better: {"balanced_accuracy_mean": 0.9, "macro_f1_mean": 0.9},
                                                    worse: {"balanced_accuracy_mean": 0.2, "macro_f1_mean": 0.2}}))
        out = io.StringIO()
        run([str(photo), "--format", "json", "--models-dir", str(root / "models"), "--metrics",
             str(folder / "test.json")], out=out)
        _, chosen = predict_json(root, photo, "--model", better)
        assert json.loads(out.getvalue()) == chosen


def test_warning_appears_exactly_below_the_threshold(trained):
    _, root = trained
    # the tiny CNN is unsure of everything (top probabilities near 1/3), so thresholds either side are easy
    classifier = load_classifier("cnn", root / "models")
    entries = find_images([str(root / "photos")])[:6]
    image, _ = classifier.read(entries[0][1])
    top = float(classifier.probabilities(image[None])[0].max())
    assert 0.02 < top < 0.98
    assert classify(classifier, entries, threshold=0.5)[0]["probability"] == pytest.approx(top, abs=1e-6)

    at = classify(classifier, entries[:1], threshold=top)[0]
    above = classify(classifier, entries[:1], threshold=float(np.nextafter(top, 2.0)))[0]
    assert at["low_confidence"] is False  # a probability equal to the threshold is confident
    assert above["low_confidence"] is True

    status, table = predict(root, entries[0][1], "--model", "cnn", "--threshold", str(top + 0.01))
    assert status == 0 and LOW_CONFIDENCE in table
    status, table = predict(root, entries[0][1], "--model", "cnn", "--threshold", str(top - 0.01))
    assert status == 0 and LOW_CONFIDENCE not in table


def test_default_threshold_comes_from_params(trained, tmp_path):
    _, root = trained
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluate"]["confidence_threshold"] = 1.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    status, results = predict_json(root, root / "photos")
    assert status == 0 and all(r["low_confidence"] for r in results if r["probability"] < 1.0)
    params["evaluate"]["confidence_threshold"] = 0.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _, results = predict_json(root, root / "photos")
    assert not any(r["low_confidence"] for r in results)


def test_csv_and_table_formats(trained):
    _, root = trained
    photo = next((root / "photos").rglob("*.jpg"))
    status, text = predict(root, photo, "--format", "csv", "--threshold", "1")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 0 and len(rows) == 1
    assert list(rows[0]) == ["path", "label", "probability", "decision", "top3", "novelty", "low_confidence",
                             "located", "locator", "view", "box", "error"]
    assert rows[0]["low_confidence"] == "true" and rows[0]["error"] == "" and rows[0]["decision"] == "review"
    assert rows[0]["box"] == "0.0500:0.7000:0.1000:0.9500"  # TRAINED_REGION: top, bottom, left, right
    assert rows[0]["top3"].count(":") == 3
    status, table = predict(root, photo, "--threshold", "1")
    lines = table.splitlines()
    assert lines[0].startswith("model: ") and str(root / "models") in lines[0]
    info = json.loads((root / "models/head.json").read_text())
    heading = " ".join(line.strip() for line in lines[1:] if not line.startswith(("path", "decision:")))
    assert lines[1].startswith("trained on ") and describe(info["trained_on"]).split(";")[0] in heading
    assert "params " + info["trained_on"]["params_sha256"] in heading
    assert "decision: threshold 1 (--threshold)" in lines
    # the file name stays whole, only folders are shortened
    assert any(line.split()[0] == str(photo) or line.split()[0].endswith("/" + photo.name) for line in lines[1:])
    assert any(line.endswith("  low confidence") for line in lines) and lines[-1] == LOW_CONFIDENCE


def test_the_table_fits_120_columns_with_long_paths_and_wide_characters_and_names_the_model(trained, tmp_path):
    _, root = trained
    photo = next((root / "photos").rglob("*.jpg"))
    deep = tmp_path / ("a_rather_long_folder_name_from_a_photo_shoot/" * 4) / ("领口照片文件夹" * 4)
    deep.mkdir(parents=True)
    wide = deep / "圆领连衣裙-正面-特写-第一张.jpg"
    shutil.copy(photo, wide)
    shutil.copy(photo, deep / ("x" * 150 + ".jpg"))
    Image.new("RGB", (20, 4000), (120, 80, 40)).save(deep / "细长条.png")  # an error note, wrapped below its row

    status, table = predict(root, deep, "--model", "head", "--threshold", "1")

    assert status == 1
    lines = table.splitlines()
    long_name = "x" * 150 + ".jpg"
    # every line fits, but the one that holds a file name longer than the terminal: names stay whole
    assert [line for line in lines if wcwidth.wcswidth(line) >= 120] == [long_name], table
    assert lines[0] == f"model: {json.loads((root / 'models/head.json').read_text())['backbone']['model']} head " \
                       f"({root / 'models/head.keras'})"
    # a name too long for the path column: every path on its own line, shortened in its folders only
    paths = [line for line in lines if line.startswith((str(tmp_path)[:5], long_name))]
    assert len(paths) == 3, table
    assert any(path.endswith("/圆领连衣裙-正面-特写-第一张.jpg") and "..." in path for path in paths)
    assert any(path.endswith("/细长条.png") for path in paths)
    assert "    error: image too elongated: 20x4000 pixels" in table
    # The answers line up in display width under their header: the label starts at the same column.
    answers = [line for line in lines[lines.index("path"):] if re.match(r"  \S", line)]
    assert answers[0].split()[:4] == ["label", "prob", "decision", "top"] and len(answers) == 4
    starts = {wcwidth.wcswidth(re.match(r"  \S+\s+", line)[0]) for line in answers}
    assert len(starts) == 1, table


def test_short_names_keep_one_line_per_photo_and_long_folders_lose_their_middle():
    result = {"label": "round_neck", "probability": 0.9, "top3": [["round_neck", 0.9], ["v_neck", 0.1]],
              "low_confidence": False, "located": None, "error": None}
    folder = "/catalog/" + "/".join(f"shoot_{i:02d}_with_a_long_name" for i in range(6))
    names = ["pro-part-74515285255-1.jpg", "pro-part-74515285255-2.jpg"]
    table = render([{**result, "path": f"{folder}/{name}"} for name in names], "table", "m", "trained on x")
    rows = [line for line in table.splitlines() if line.startswith("/catalog")]
    assert [row.split()[0].rsplit("/", 1)[1] for row in rows] == names  # told apart by their whole names
    assert all("..." in row.split()[0] and row.split()[1] == "round_neck" for row in rows)
    assert max(len(line) for line in table.splitlines()) < 120


def test_batches_of_any_size_give_the_same_results_in_input_order(trained):
    _, root = trained
    _, whole = predict_json(root, root / "photos", "--model", "cnn")
    _, small = predict_json(root, root / "photos", "--model", "cnn", "--batch-size", "5")
    assert [r["path"] for r in small] == [r["path"] for r in whole]
    for a, b in zip(small, whole):
        assert a["label"] == b["label"] and a["probability"] == pytest.approx(b["probability"], abs=1e-5)


# --- bad input ----------------------------------------------------------------------------------

def test_unreadable_files_get_an_error_and_the_others_still_get_results(trained, tmp_path):
    _, root = trained
    bad = write_bad_files(tmp_path / "bad")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    good = next((root / "photos").rglob("*.jpg"))
    inputs = [good, bad["corrupt_jpeg"][0], bad["bomb_png"][0], notes, tmp_path / "missing.jpg", good]

    status, results = predict_json(root, *inputs)

    assert status == 1
    assert [r["path"] for r in results] == [str(p) for p in inputs]
    assert results[0]["label"] and results[5]["label"] and results[0]["error"] is None
    assert bad["corrupt_jpeg"][1] in results[1]["error"]
    assert bad["bomb_png"][1] in results[2]["error"]  # the decompression-bomb guard, before decoding
    assert "unsupported file type '.txt'" in results[3]["error"]
    assert results[4]["error"] == "no such file or folder"
    for r in results[1:5]:
        assert r["label"] is None and r["probability"] is None and r["top3"] == [] and r["low_confidence"] is None


def test_every_bad_file_in_a_folder_is_reported(trained, tmp_path):
    _, root = trained
    bad = write_bad_files(tmp_path / "bad")
    status, results = predict_json(root, tmp_path / "bad")
    assert status == 2 and len(results) == len(bad)  # not one could be classified: nothing was done
    reasons = {os.path.basename(r["path"]): r["error"] for r in results}
    for path, reason in bad.values():
        assert reason in reasons[path.name]


def test_a_folder_with_no_images_and_no_model_are_clear_errors(trained, tmp_path):
    _, root = trained
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no photos here")
    with pytest.raises(PipelineError, match="no images to classify"):
        predict(root, tmp_path / "empty")
    photo = next((root / "photos").rglob("*.jpg"))
    with pytest.raises(PipelineError, match=r"not found \(no trained head model\); run `dvc repro` first"):
        run([str(photo), "--model", "head", "--models-dir", str(tmp_path / "models")], out=io.StringIO())


def command(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "stages.predict", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_the_command_exit_codes_and_messages(trained, tmp_path):
    """As a user runs it: no model -> 2, some bad files -> 1 with results, no traceback anywhere."""
    _, root = trained
    photo = next((root / "photos").rglob("*.jpg"))

    no_model = command(photo, cwd=tmp_path)
    assert no_model.returncode == 2
    assert "error: models/head.keras not found (no trained head model); run `dvc repro` first" in no_model.stderr

    shutil.copytree(root / "models", tmp_path / "models")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    partial = command(photo, tmp_path / "broken.jpg", "--format", "json", cwd=tmp_path)
    assert partial.returncode == 1
    results = json.loads(partial.stdout)
    assert results[0]["label"] and results[1]["error"]
    assert "1 of 2 file(s) could not be classified" in partial.stderr

    junk = tmp_path / "junk"
    write_bad_files(junk)
    Image.new("RGB", (1, 100_000), (120, 80, 40)).save(junk / "strip.png")
    nothing = command(junk, "--format", "json", cwd=tmp_path)
    assert nothing.returncode == 2, nothing.stderr
    results = json.loads(nothing.stdout)
    assert all(r["error"] for r in results)
    assert "1x100000 pixels; each side must be at least 16 (data.min_side)" in \
        next(r["error"] for r in results if r["path"].endswith("strip.png"))
    assert f"none of the {len(results)} file(s) could be classified" in nothing.stderr

    usage = command(photo, "--model", "resnet", cwd=tmp_path)
    assert usage.returncode == 2 and "invalid choice: 'resnet'" in usage.stderr
    for result in (no_model, partial, nothing, usage):
        assert "Traceback" not in result.stderr


def test_a_head_on_random_weights_is_flagged_in_the_json_and_warned_about_at_start(trained_random, trained, caplog):
    _, root = trained_random
    photo = next((root / "photos").rglob("*.jpg"))
    with caplog.at_level("WARNING", logger="fashion"):
        status, results = predict_json(root, photo, "--model", "head")
    assert status == 0 and results[0]["random_weights"] is True and results[0]["label"]
    assert "RANDOM weights" in caplog.text and "near chance" in caplog.text

    caplog.clear()
    _, pretrained = trained
    for kind in ("head", "cnn"):
        status, results = predict_json(pretrained, photo, "--model", kind)
        assert status == 0 and results[0]["random_weights"] is False
    assert "RANDOM" not in caplog.text
