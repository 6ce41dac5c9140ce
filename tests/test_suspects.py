"""The suspects stage on real photos with labels flipped on purpose: prepare, extract (the real MobileNet 0.25
weights), crossval and suspects run as the pipeline runs them; the flipped photos must come out on top."""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fashion.data import dataset
from fashion.data.exclusions import read_suspects
from fashion.data.preparation import prepare
from fashion.errors import PipelineError
from fashion.evaluation.crossval import crossval
from fashion.evaluation.suspects import COLUMNS, MISLABELLED, NOT_LOCATED, find_suspects, suspects, top_paths
from fashion.features.extraction import extract
from fashion.paths import Paths
from tests.helpers import MOBILENET_025, REPO, make_params, shared_path

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

CLOTHING = shared_path("data/clothing/train")
CLASSES = ("hat", "pants", "shoes", "skirt")
PER_CLASS = 14
# (class folder, index of the photo in it, the class it is filed under instead): two flipped photos per class.
FLIPS = [(name, index, CLASSES[(c + 1 + index % 3) % len(CLASSES)]) for c, name in enumerate(CLASSES)
         for index in (3, 8)]
TOP_K = 2 * len(FLIPS)


@pytest.fixture(scope="module")
def flipped(tmp_path_factory):
    """(root, {path of each flipped photo as filed: its true class}) after prepare, extract, crossval, suspects."""
    root = tmp_path_factory.mktemp("flipped")
    source = CLOTHING()
    photos = root / "photos"
    for name in CLASSES:
        (photos / name).mkdir(parents=True)
        for photo in sorted((source / name).glob("*.jpg"))[:PER_CLASS]:
            shutil.copy(photo, photos / name / photo.name)
    truth = {}
    chosen = [(sorted((photos / name).glob("*.jpg"))[index], name, wrong) for name, index, wrong in FLIPS]
    for photo, name, wrong in chosen:
        photo.rename(photos / wrong / photo.name)  # a photo filed in the wrong class folder: a wrong label
        truth[f"{wrong}/{photo.name}"] = name
    params = make_params(**{"data.source": "folder", "data.path": str(photos), "data.image_size": 96,
                            "features.weights": str(MOBILENET_025()), "features.alpha": 0.25,
                            "crossval.folds": 4, "crossval.repeats": 2, "head.epochs": 40, "head.patience": 10,
                            "head.units": 32, "head.learning_rate": 0.003})
    paths = Paths(root)
    for stage in (prepare, extract, crossval):
        stage(params, paths)
    suspects(paths)
    return root, truth


def test_flipped_labels_are_found_at_the_top(flipped):
    root, truth = flipped
    table = read_suspects(root / "metrics/suspects.csv")
    split_of = {r["path"]: r["split"] for r in dataset.read_manifest(root / "data/prepared")}
    findable = {path for path in truth if split_of[path] != "test"}  # test labels are never questioned
    assert len(findable) >= 6
    top = [row["path"] for row in table[:TOP_K]]
    recall = len(findable & set(top)) / len(findable)
    print(f"recall of the {len(findable)} flipped train + validation photos in the top {TOP_K}: {recall:.2f}")
    assert recall >= 0.8, f"only {recall:.0%} of the flipped photos in the top {TOP_K}: {top}"
    for row in table:
        assert list(row) == list(COLUMNS)
        assert row["split"] in ("train", "validation")
        assert row["given"] == row["path"].split("/")[0] and row["suggested"] != row["given"]
        assert row["reason"] == MISLABELLED
    # Mostly the true class is suggested (a few dozen photos at 96 px make weak models: not always).
    suggested = {row["path"]: row["suggested"] for row in table}
    assert sum(suggested.get(path) == truth[path] for path in findable) >= len(findable) / 2
    qualities = [float(row["quality"]) for row in table]
    assert qualities == sorted(qualities)  # worst first
    assert (root / "plots/suspects.png").stat().st_size > 20_000  # a gallery of photos, not an empty figure


def test_only_train_and_validation_photos_are_judged(flipped):
    root, truth = flipped
    manifest = dataset.read_manifest(root / "data/prepared")
    with open(root / "metrics/cv_predictions.csv", newline="") as handle:
        judged = {row["path"] for row in csv.DictReader(handle)}
    assert judged == {r["path"] for r in manifest if r["split"] != "test"}
    flipped_in_test = {r["path"] for r in manifest if r["split"] == "test" and r["path"] in truth}
    assert not flipped_in_test & {row["path"] for row in read_suspects(root / "metrics/suspects.csv")}


def test_top_prints_paths_for_the_exclude_file_and_skips_decided_ones(flipped, tmp_path):
    root, _ = flipped
    table = read_suspects(root / "metrics/suspects.csv")
    exclude = tmp_path / "exclude.txt"
    exclude.write_text(f"{table[0]['path']}\n# keep {table[1]['path']}\n")
    chosen = top_paths(3, root / "metrics/suspects.csv", exclude, root / "photos")
    assert chosen == [row["path"] for row in table[2:5]]
    assert top_paths(3, root / "metrics/suspects.csv") == [row["path"] for row in table[:3]]

    # The command, as a user runs it in the repository: paths only on stdout, ready for `>> exclude.txt`.
    work = tmp_path / "work"
    (work / "metrics").mkdir(parents=True)
    shutil.copy(root / "metrics/suspects.csv", work / "metrics/suspects.csv")
    params = (REPO / "params.yaml").read_text().replace("path: data/synthetic", f"path: {root / 'photos'}") \
        .replace("source: synthetic", "source: folder")
    (work / "params.yaml").write_text(params)
    shutil.copy(exclude, work / "exclude.txt")
    result = subprocess.run([sys.executable, "-m", "stages.suspects", "--top", "2"], cwd=work, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == chosen[:2]
    bad = subprocess.run([sys.executable, "-m", "stages.suspects", "--top", "0"], cwd=work, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert bad.returncode == 2 and "--top must be 1 or more" in bad.stderr
    (work / "metrics/suspects.csv").unlink()
    none = subprocess.run([sys.executable, "-m", "stages.suspects", "--top", "2"], cwd=work, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert none.returncode == 2 and "metrics/suspects.csv not found" in none.stderr and "Traceback" not in none.stderr


def test_photos_without_a_located_neckline_are_flagged_where_the_manifest_says_so(flipped, tmp_path):
    root, _ = flipped
    prepared = tmp_path / "prepared"
    shutil.copytree(root / "data/prepared", prepared)
    records = dataset.read_manifest(prepared)
    train = [r for r in records if r["split"] == "train"]
    unlocated = {train[0]["path"], train[1]["path"]}
    # The neckline locator's manifest column (data.locate): written here as the prepare stage will write it.
    with open(prepared / dataset.MANIFEST_FILE, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys([*dataset.MANIFEST_COLUMNS, "located"])))
        writer.writeheader()
        for record in records:
            writer.writerow({**record, "located": "false" if record["path"] in unlocated else "true"})
    (tmp_path / "metrics").mkdir()
    shutil.copy(root / "metrics/cv_predictions.csv", tmp_path / "metrics/cv_predictions.csv")
    table = suspects(Paths(root, prepared=prepared, metrics=tmp_path / "metrics", plots=tmp_path / "plots"))
    flagged = {row["path"]: row["reason"] for row in table if NOT_LOCATED in row["reason"]}
    assert set(flagged) == unlocated
    without_column = read_suspects(root / "metrics/suspects.csv")
    assert {row["path"] for row in table} == {row["path"] for row in without_column} | unlocated


def test_confident_learning_flags_confidently_contradicted_labels_only():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    probabilities = np.full((90, 3), 0.05)
    probabilities[np.arange(90), labels] = 0.9
    probabilities += rng.uniform(0, 0.02, probabilities.shape)
    wrong = [4, 40, 77]
    for i in wrong:  # the models are sure of another class
        probabilities[i] = [0.05, 0.05, 0.05]
        probabilities[i, (labels[i] + 1) % 3] = 0.9
    found = find_suspects(labels, probabilities)
    assert sorted(i for i, *_ in found) == wrong
    assert all(suggested == (labels[i] + 1) % 3 and quality < 0.1 for i, suggested, quality, _ in found)


def test_predictions_of_test_photos_are_refused(flipped, tmp_path):
    root, _ = flipped
    test_photo = next(r["path"] for r in dataset.read_manifest(root / "data/prepared") if r["split"] == "test")
    lines = (root / "metrics/cv_predictions.csv").read_text().splitlines()
    lines[1] = ",".join([test_photo, *lines[1].split(",")[1:]])
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/cv_predictions.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(PipelineError, match="not train or validation photos of the prepared data"):
        suspects(Paths(root, metrics=tmp_path / "metrics", plots=tmp_path / "plots"))
    assert not (tmp_path / "metrics/suspects.csv").exists()
