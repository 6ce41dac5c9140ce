"""crossval with fine-tuning on: the fine-tuned backbone on the same folds as the head and the baseline, from the
prepared images, with real Keras and the repository's MobileNet 0.25 weights; what each fold trains on."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fashion.data import dataset
from fashion.errors import PipelineError
from fashion.evaluation.crossval import cross_validate, crossval
from fashion.evaluation.crossval_finetuned import FoldImages
from fashion.evaluation.folds import folds, pooled_features, pooled_rows
from fashion.evaluation.suspects import read_predictions
from fashion.paths import Paths
from tests.helpers import REPO, copy_photos, make_params

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

CLASSES = ("round_neck", "v_neck", "henley")
TINY = {"data.image_size": 32, "split.validation": 0.2, "split.test": 0.2,
        "features.weights": str(REPO / "weights/mobilenet_0.25_224_no_top.h5"), "features.alpha": 0.25,
        "head.epochs": 10, "head.patience": 5, "head.units": 16, "head.learning_rate": 0.003,
        "crossval.folds": 2, "crossval.repeats": 1, "crossval.validation": 0.34,
        "finetune.enabled": True, "finetune.epochs": 2, "finetune.warmup_epochs": 1, "finetune.batch_size": 4,
        "finetune.patience": 2}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(params, paths): 10 real photos of each of 3 classes, prepared at 32 px, their MobileNet 0.25 features."""
    from fashion.data.preparation import prepare
    from fashion.features.extraction import extract

    root = tmp_path_factory.mktemp("cv_finetuned")
    photos = copy_photos(root / "photos", per_class=10, classes=CLASSES)
    params = make_params(**{"data.source": "folder", "data.path": str(photos), **TINY})
    paths = Paths(root)
    prepare(params, paths)
    extract(params, paths)
    return params, paths


def test_the_stage_scores_the_fine_tuned_model_beside_the_head_and_the_baseline(prepared):
    params, paths = prepared
    summary = crossval(params, paths)  # folds in spawned worker processes, as the stage runs them

    written = json.loads(paths.cv.read_text())
    assert written == summary and list(written)[:3] == ["head", "baseline", "finetuned"]
    assert set(written["finetuned"]) == set(written["head"])
    assert 0 <= written["finetuned"]["balanced_accuracy_mean"] <= 1 and written["finetuned"]["accuracy_sd"] >= 0

    with open(paths.cv_folds, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["fold"], r["model"]) for r in rows] == [(f, m) for f in "12" for m in ("head", "baseline", "finetuned")]
    for fold in "12":  # the same held-out photos for all three
        assert len({r["images"] for r in rows if r["fold"] == fold}) == 1
    tuned = [float(r["balanced_accuracy"]) for r in rows if r["model"] == "finetuned"]
    assert np.mean(tuned) == pytest.approx(written["finetuned"]["balanced_accuracy_mean"], abs=1e-6)

    # Every model's out-of-fold probabilities, one block of rows each; every train + validation photo once per
    # model, no test photo. One repeat: the held-out fold's probabilities are exactly its scores in cv_folds.csv.
    manifest = dataset.read_manifest(paths.prepared)
    pooled = {r["path"] for r in manifest if r["split"] != "test"}
    fold_of = fold_positions(params, paths)
    for model in ("head", "baseline", "finetuned"):
        photos, given, classes, probabilities = read_predictions(paths.cv_oof, model=model)
        assert set(photos) == pooled and len(photos) == len(pooled)
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
        labels = np.array([classes.index(name) for name in given])
        for fold, held in fold_of.items():
            accuracy = np.mean(probabilities[held].argmax(axis=1) == labels[held])
            scored = next(r for r in rows if r["fold"] == fold and r["model"] == model)
            assert accuracy == pytest.approx(float(scored["accuracy"]), abs=1e-6)
    with pytest.raises(PipelineError, match="several models' out-of-fold probabilities"):
        read_predictions(paths.cv_oof)

    # The suspects stage's file: the best model's block alone, in the same format.
    best = max(("head", "baseline", "finetuned"), key=lambda name: written[name]["balanced_accuracy_mean"])
    photos, _, _, probabilities = read_predictions(paths.cv_predictions)
    assert {line.split(",")[2] for line in paths.cv_predictions.read_text().splitlines()} == {"model", best}
    np.testing.assert_array_equal(probabilities, read_predictions(paths.cv_oof, model=best)[3])


def fold_positions(params, paths):
    """{fold ('1', '2'): positions of its held-out photos in the pooled order}."""
    _, y, groups = pooled_features(paths.features, paths.prepared)
    return {str(fold + 1): held for _, fold, _, held in folds(y, groups, params.crossval.folds, 1, params.seed)}


def test_a_fold_trains_and_stops_on_its_training_part_only_and_never_reads_the_test_split(prepared, monkeypatch):
    """What the fine-tuning actually reads, batch by batch: its training batches are the fold's fit part, its
    early-stopping batches the rest of the fold's training part; the held-out fold and the test split never."""
    from fashion.data.pixel_batches import ImageBatches
    from fashion.data.recipes import BackboneRecipe
    from fashion.features.store import read_info

    params, paths = prepared
    fed, read = [], []  # (training?, rows) of every batch fine-tuning reads; rows of every image-store read
    original_read, original_store_read = ImageBatches._read, dataset.ImageStore.read

    def recording_read(self, chosen):
        fed.append((self.seed is not None, id(self), set(self.rows[chosen].tolist())))
        return original_read(self, chosen)

    def recording_store_read(self, rows):
        read.append(set(np.asarray(rows).tolist()))
        return original_store_read(self, rows)

    monkeypatch.setattr(ImageBatches, "_read", recording_read)
    monkeypatch.setattr(dataset.ImageStore, "read", recording_store_read)

    info = read_info(paths.features)
    x, y, groups = pooled_features(paths.features, paths.prepared)
    rows = pooled_rows(paths.features)
    images = FoldImages(paths.prepared / dataset.IMAGES_FILE, rows, BackboneRecipe.from_artifact(info, "info.json"))
    scores, _, out_of_fold, _ = cross_validate(params, info["classes"], x, y, groups, workers=1, images=images)
    assert len(scores) == 2 and set(out_of_fold) == {"head", "baseline", "finetuned"}

    test_rows = {r["row"] for r in dataset.read_manifest(paths.prepared) if r["split"] == "test"}
    assert test_rows and not set().union(*read) & test_rows  # the test split is never read
    # In fold order, each fold's two pipelines: training batches, then early-stopping batches.
    pipelines = list(dict.fromkeys((training, key) for training, key, _ in fed))
    assert [training for training, _ in pipelines] == [True, False, True, False]
    for (_, _, train, held), (fit_pipe, stop_pipe) in zip(folds(y, groups, 2, 1, params.seed),
                                                         zip(pipelines[::2], pipelines[1::2])):
        fit_rows = set().union(*(r for t, k, r in fed if (t, k) == fit_pipe))
        stop_rows = set().union(*(r for t, k, r in fed if (t, k) == stop_pipe))
        assert fit_rows and stop_rows and not fit_rows & stop_rows
        assert fit_rows | stop_rows == set(rows[train].tolist())  # the whole training part, nothing else
        assert not (fit_rows | stop_rows) & set(rows[held].tolist())  # never a held-out photo


def test_too_few_photos_of_a_class_for_the_folds_is_a_clear_error_before_any_training():
    """With fine-tuning, every fold must train on every class: a class whose photos all show one item (grouped
    folds) is held out whole in one fold, which then has none of it to train on."""
    labels = np.repeat([0, 1, 2], [12, 12, 3])
    groups = np.array([f"item{i}" for i in range(24)] + ["one_item"] * 3)
    params = make_params(**{"crossval.folds": 2, "crossval.validation": 0.34, "finetune.enabled": True})
    images = FoldImages(Path("never-read.npy"), np.arange(len(labels)), None)
    with pytest.raises(PipelineError, match=r"repeat 1 fold \d has no training image of class\(es\) c .*Lower "
                                            r"crossval.folds, add photos"):
        cross_validate(params, ["a", "b", "c"], np.zeros((len(labels), 4)), labels, groups, workers=1, images=images)
