"""SMOTE on training features: only train changes, minorities rise, k adapts to tiny classes."""

import hashlib
import json

import numpy as np
import pytest

from fashion.atomic import write_json
from fashion.errors import PipelineError
from fashion.features.smote import resample, smote_resample
from fashion.features.store import load_split
from fashion.paths import Paths
from tests.helpers import make_params

CLASSES = ["big", "middle", "small"]


def write_features(folder, counts, dim=8, seed=0, separation=5.0):
    """An extract-stage output folder with class clusters of the given sizes per split
    (cluster centres `separation` apart on every axis; the noise has unit variance)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for split, split_counts in counts.items():
        labels = np.repeat(np.arange(len(split_counts)), split_counts)
        features = (rng.normal(size=(len(labels), dim)) + labels[:, None] * separation).astype(np.float32)
        np.savez(folder / f"{split}.npz", features=features, labels=labels, rows=np.arange(len(labels)))
    train = dict(zip(CLASSES, map(int, counts.get("train", [0] * len(CLASSES)))))
    write_json(folder / "info.json", {"classes": CLASSES, "data": {  # the record extract copies from prepare
        "source": "folder", "path": "generated features", "classes": CLASSES, "train_images": train}})
    return folder


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_smote_balances_train_only_and_keeps_the_originals(tmp_path):
    features = write_features(tmp_path / "features", {
        "train": [40, 15, 8], "validation": [5, 3, 2], "test": [6, 3, 2]})
    before = {p.name: digest(p) for p in features.iterdir()}
    resample(make_params(), Paths(tmp_path, features=features, resampled=tmp_path / "resampled", metrics=tmp_path))

    assert {p.name: digest(p) for p in features.iterdir()} == before  # nothing upstream rewritten
    assert [p.name for p in (tmp_path / "resampled").iterdir()] == ["train.npz"]
    original_x, original_y = load_split(features, "train")
    new_x, new_y = load_split(tmp_path / "resampled", "train")
    assert np.bincount(new_y).tolist() == [40, 40, 40]
    np.testing.assert_array_equal(new_x[:len(original_y)], original_x)  # originals first, untouched
    # each synthetic sample lies between same-class samples: its nearest original is of its class
    synthetic_x, synthetic_y = new_x[len(original_y):], new_y[len(original_y):]
    distances = ((synthetic_x[:, None, :] - original_x[None, :, :]) ** 2).sum(-1)
    assert (original_y[distances.argmin(1)] == synthetic_y).all()

    report = json.loads((tmp_path / "smote.json").read_text())
    assert report["train_before"] == {"big": 40, "middle": 15, "small": 8}
    assert report["train_after"] == {"big": 40, "middle": 40, "small": 40}
    assert report["synthetic_samples"] == 57 and report["warning"] is None


def test_same_seed_same_samples_other_seed_other_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = np.array([0] * 20 + [1] * 10)
    first = smote_resample(x, y, 5, 42, ["a", "b"])[0]
    np.testing.assert_array_equal(first, smote_resample(x, y, 5, 42, ["a", "b"])[0])
    assert not np.array_equal(first, smote_resample(x, y, 5, 7, ["a", "b"])[0])


def test_a_class_with_k_or_fewer_samples_lowers_k_with_a_warning(tmp_path):
    features = write_features(tmp_path / "features", {"train": [20, 10, 3], "validation": [1, 1, 1],
                                                      "test": [1, 1, 1]})
    resample(make_params(**{"smote.k_neighbors": 5}), Paths(tmp_path, features=features, resampled=tmp_path / "resampled", metrics=tmp_path))
    report = json.loads((tmp_path / "smote.json").read_text())
    assert report["k_neighbors_requested"] == 5 and report["k_neighbors_used"] == 2
    assert "'small' has 3 training images" in report["warning"]
    assert report["train_after"] == {"big": 20, "middle": 20, "small": 20}


def test_a_class_with_one_sample_is_a_clear_error(tmp_path):
    features = write_features(tmp_path / "features", {"train": [20, 10, 1], "validation": [1, 1, 1],
                                                      "test": [1, 1, 1]})
    with pytest.raises(PipelineError, match="'small' has 1 training image.*smote.enabled=false"):
        resample(make_params(), Paths(tmp_path, features=features, resampled=tmp_path / "resampled", metrics=tmp_path))
    assert not (tmp_path / "resampled").exists() and not (tmp_path / "smote.json").exists()


def test_disabled_smote_passes_the_training_features_through(tmp_path):
    features = write_features(tmp_path / "features", {"train": [20, 10, 4], "validation": [1, 1, 1],
                                                      "test": [1, 1, 1]})
    resample(make_params(**{"smote.enabled": False}), Paths(tmp_path, features=features, resampled=tmp_path / "resampled", metrics=tmp_path))
    original_x, original_y = load_split(features, "train")
    new_x, new_y = load_split(tmp_path / "resampled", "train")
    np.testing.assert_array_equal(new_x, original_x)
    np.testing.assert_array_equal(new_y, original_y)
    assert json.loads((tmp_path / "smote.json").read_text())["train_after"] == {"big": 20, "middle": 10, "small": 4}
