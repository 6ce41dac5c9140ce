"""Cross-validation for choosing: folds of train + validation only, grouped by item, SMOTE and early
stopping inside each fold's training part, the baseline on the same folds; seeded and exact."""

import json

import numpy as np
import pytest

from fashion.data import dataset
from fashion.errors import PipelineError
from fashion.evaluation.crossval import crossval
from fashion.evaluation.folds import early_stopping_split, folds
from fashion.paths import Paths
from tests.helpers import make_params
from tests.test_resample import write_features

FAST = {"head.epochs": 30, "head.patience": 5, "head.units": 16, "head.learning_rate": 0.01,
        "head.input_dropout": 0.0, "head.l2": 0.0, "crossval.folds": 3, "crossval.repeats": 2}


def features_with_manifest(folder, counts, groups_of=None, separation=5.0):
    """write_features' folder plus a prepared folder whose manifest names each row's group."""
    features = write_features(folder / "features", counts, separation=separation)
    records, row = [], 0
    for split, split_counts in counts.items():
        for label, count in enumerate(split_counts):
            for _ in range(count):
                group = groups_of(row) if groups_of else f"photo{row}"
                records.append({"row": row, "path": f"{label}/{row}.jpg", "label": label, "label_index": label,
                                "split": split, "group": group, "sha256": str(row)})
                row += 1
    # write_features numbers rows per split from 0; renumber them to the manifest's.
    start = 0
    for split, split_counts in counts.items():
        with np.load(features / f"{split}.npz") as arrays:
            x, y = arrays["features"], arrays["labels"]
        np.savez(features / f"{split}.npz", features=x, labels=y, rows=np.arange(start, start + len(y)))
        start += len(y)
    (folder / "prepared").mkdir()
    dataset.write_manifest(folder / "prepared" / dataset.MANIFEST_FILE, records)
    return features, folder / "prepared"


def run(tmp_path, counts=None, name="cv", separation=5.0, **overrides):
    counts = counts or {"train": [30, 20, 12], "validation": [6, 4, 3], "test": [6, 4, 3]}
    features, prepared = features_with_manifest(tmp_path / name, counts, separation=separation)
    params = make_params(**{**FAST, **overrides})
    summary = crossval(params, Paths(tmp_path / name, features=features, prepared=prepared, metrics=tmp_path / name))
    return summary, tmp_path / name


@pytest.mark.slow
def test_both_models_score_well_on_separable_features_with_mean_and_spread(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        summary, folder = run(tmp_path)
    # six folds, each a new model: scored without a traced predict(). (Keras's train step may warn too when other
    # tests ran in this process before: TensorFlow counts traces process-wide; the stage runs in its own process.)
    assert not [r for r in caplog.records if "retracing" in r.getMessage() and "predict" in r.getMessage()]
    written = json.loads((folder / "cv.json").read_text())
    assert written == summary
    for model in ("head", "baseline"):
        assert summary[model]["balanced_accuracy_mean"] > 0.9  # chance is 1/3
        assert 0 <= summary[model]["accuracy_sd"] < 0.1
    assert summary["folds"] == 3 and summary["repeats"] == 2 and summary["images"] == 75
    lines = (folder / "cv_folds.csv").read_text().splitlines()
    assert lines[0] == "repeat,fold,model,images,accuracy,balanced_accuracy,macro_f1"
    assert len(lines) == 1 + 3 * 2 * 2


@pytest.mark.slow
def test_every_train_and_validation_photo_gets_out_of_fold_probabilities_of_the_better_model(tmp_path):
    import pandas as pd

    summary, folder = run(tmp_path)
    predictions = pd.read_csv(folder / "cv_predictions.csv")
    best = max(("head", "baseline"), key=lambda name: summary[name]["balanced_accuracy_mean"])
    assert set(predictions["model"]) == {best}
    assert len(predictions) == 75 and predictions["path"].is_unique  # train + validation, never the 13 test rows
    manifest = pd.read_csv(folder / "prepared" / dataset.MANIFEST_FILE)
    assert set(predictions["path"]) == set(manifest.loc[manifest["split"] != "test", "path"])
    probabilities = predictions[[c for c in predictions if c.startswith("p_")]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)  # an average over both repeats is still one
    given = predictions["label"].map({name: i for i, name in enumerate(predictions.columns[3:].str[2:])})
    assert (probabilities.argmax(axis=1) == given).mean() > 0.9  # separable features: mostly right
    every = pd.read_csv(folder / "cv_oof.csv")  # every model's, for the decide stage
    assert every["model"].tolist() == ["head"] * 75 + ["baseline"] * 75
    pd.testing.assert_frame_equal(every[every["model"] == best].reset_index(drop=True), predictions)


@pytest.mark.slow
def test_the_test_split_is_never_read_and_the_result_is_exact(tmp_path):
    first, a = run(tmp_path, name="a")
    with np.load(a / "features/test.npz") as arrays:
        rows = arrays["rows"]
    # Another test split entirely: the CV numbers must not move, to the last byte.
    second_features, _ = features_with_manifest(tmp_path / "b", {"train": [30, 20, 12], "validation": [6, 4, 3],
                                                                 "test": [6, 4, 3]})
    np.savez(second_features / "test.npz", features=np.zeros((13, 8), np.float32), labels=np.zeros(13, np.int64),
             rows=rows)
    crossval(make_params(**FAST), Paths(tmp_path / "b", features=second_features, prepared=tmp_path / "b/prepared",
                                        metrics=tmp_path / "b"))
    for name in ("cv.json", "cv_folds.csv", "cv_predictions.csv"):
        assert (tmp_path / "b" / name).read_bytes() == (a / name).read_bytes()


def test_folds_keep_every_item_on_one_side_and_stratify():
    labels = np.repeat([0, 1, 2], [40, 30, 20])
    groups = np.array([f"item{i // 3}" for i in range(len(labels))])  # three photos per item
    seen = []
    for repeat, fold, train, held in folds(labels, groups, 5, 2, seed=7):
        assert not set(train) & set(held) and len(train) + len(held) == len(labels)
        assert not set(groups[train]) & set(groups[held]), "an item on both sides of a fold"
        assert set(labels[held]) == {0, 1, 2}
        fit, stop = early_stopping_split(labels[train], groups[train], 0.15, seed=7)
        assert not set(train[fit]) & set(held) and not set(train[stop]) & set(held)  # early stopping: no held-out
        assert not set(groups[train][fit]) & set(groups[train][stop])
        seen.append(tuple(sorted(held)))
    assert len(set(seen)) == 10  # the two repeats shuffle differently


def test_ungrouped_photos_fold_by_photo():
    labels = np.repeat([0, 1], [20, 10])
    groups = np.array([f"p{i}" for i in range(30)])
    held_sizes = [len(held) for _, _, _, held in folds(labels, groups, 5, 1, seed=0)]
    assert held_sizes == [6, 6, 6, 6, 6]


@pytest.mark.slow
def test_smote_changes_only_the_training_part(tmp_path):
    # Overlapping classes, so that what the head trains on shows in its scores.
    with_smote, _ = run(tmp_path, name="smote", separation=0.7, **{"smote.enabled": True})
    without, _ = run(tmp_path, name="plain", separation=0.7, **{"smote.enabled": False})
    assert with_smote["baseline"] == without["baseline"]  # the baseline never sees SMOTE
    assert with_smote["head"] != without["head"]


def test_a_class_smaller_than_the_folds_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match=r"class 'small' has 2 train \+ validation image\(s\), fewer than "
                                            r"crossval.folds=3"):
        run(tmp_path, counts={"train": [30, 20, 1], "validation": [6, 4, 1], "test": [6, 4, 3]})
    assert not (tmp_path / "cv" / "cv.json").exists()


@pytest.mark.slow
def test_folds_in_worker_processes_give_the_same_numbers_to_the_last_digit(tmp_path):
    """The stage runs its folds side by side in processes; each fold seeds its own training, so one process or
    several give the same scores, rows and out-of-fold probabilities."""
    from fashion.evaluation.crossval import cross_validate
    from fashion.evaluation.folds import pooled_features

    features, prepared = features_with_manifest(tmp_path, {"train": [16, 12, 9], "validation": [4, 3, 3],
                                                           "test": [2, 2, 2]})
    params = make_params(**{**FAST, "crossval.repeats": 1})
    x, y, groups = pooled_features(features, prepared)
    alone, side_by_side = (cross_validate(params, ["a", "b", "c"], x, y, groups, workers=workers)
                           for workers in (1, 2))
    assert alone[0] == side_by_side[0] and alone[1] == side_by_side[1]
    for name, probabilities in alone[2].items():
        np.testing.assert_array_equal(probabilities, side_by_side[2][name])


def test_a_training_part_too_small_for_the_early_stopping_share_is_a_clear_error():
    labels = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(PipelineError, match=r"a fold's training part has 6 photo\(s\).*crossval.validation=0.15 keeps "
                                            r"1 in 7 of them apart for early stopping, so it needs at least 7"):
        early_stopping_split(labels, np.array([f"p{i}" for i in range(6)]), 0.15, seed=0)
    fit, stop = early_stopping_split(labels, np.array([f"p{i}" for i in range(6)]), 0.5, seed=0)
    assert len(fit) + len(stop) == 6 and not set(fit) & set(stop)
