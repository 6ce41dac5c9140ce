"""The classifier head on cached features: learns, stops early, saves, reproduces."""

import csv

import keras
import numpy as np

from stages.train_head import train_head
from stages.training import load_model_info
from tests.conftest import make_params
from tests.test_resample import write_features


def train(tmp_path, counts=None, **overrides):
    counts = counts or {"train": [30, 30, 30], "validation": [8, 8, 8], "test": [8, 8, 8]}
    features = write_features(tmp_path / "features", counts)
    info = (features / "info.json").read_text().replace("}", ', "model": "mobilenet", "weights": "none", '
                                                        '"weights_used": "none", "alpha": 0.25, "precision": "float32", '
                                                        '"image_size": 32, "resize": "pad"}')
    (features / "info.json").write_text(info)
    params = make_params(**{"head.epochs": 40, "head.patience": 5, "head.units": 16, "head.learning_rate": 0.01,
                            "head.input_dropout": 0.0, "head.l2": 0.0,
                            **overrides})
    model = train_head(params, features, features, tmp_path / "head.keras", tmp_path / "history.csv")
    return model, features


def test_head_beats_chance_on_separable_features(tmp_path):
    model, features = train(tmp_path)
    with np.load(features / "test.npz") as test:
        accuracy = (model.predict(test["features"], verbose=0).argmax(1) == test["labels"]).mean()
    assert accuracy > 0.9  # chance is 1/3


def test_history_model_and_info_are_saved(tmp_path):
    model, features = train(tmp_path)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    info = load_model_info(tmp_path / "head.keras")
    assert info["classes"] == ["big", "middle", "small"] and info["backbone"]["model"] == "mobilenet"
    # early stopping kept the epoch with the lowest validation loss
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert info["best_epoch"] == int(best["epoch"])
    loaded = keras.models.load_model(tmp_path / "head.keras", safe_mode=True)
    with np.load(features / "validation.npz") as validation:
        np.testing.assert_allclose(loaded.predict(validation["features"], verbose=0),
                                   model.predict(validation["features"], verbose=0), rtol=1e-6)
        val_loss = keras.losses.sparse_categorical_crossentropy(
            validation["labels"], model.predict(validation["features"], verbose=0)).numpy().mean()
    np.testing.assert_allclose(val_loss, info["best_val_loss"], rtol=1e-3)


def test_two_runs_give_identical_weights(tmp_path):
    first, _ = train(tmp_path / "a")
    second, _ = train(tmp_path / "b")
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "a" / "history.csv").read_bytes() == (tmp_path / "b" / "history.csv").read_bytes()
