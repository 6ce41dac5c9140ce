"""The classifier head on cached features: learns, stops early, saves, reproduces."""

import csv
import json

import keras
import numpy as np

from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.models.head import build_head, ignore_constant_features, train_head
from fashion.models.training import fit_temperature, load_model_info
from fashion.paths import Paths
from tests.helpers import make_params
from tests.test_resample import write_features


def train(tmp_path, counts=None, separation=5.0, **overrides):
    counts = counts or {"train": [30, 30, 30], "validation": [8, 8, 8], "test": [8, 8, 8]}
    features = write_features(tmp_path / "features", counts, separation=separation)
    info = json.loads((features / "info.json").read_text())
    info["preprocessing"] = Preprocessing(32).to_record()
    info["backbone"] = BackboneRecipe("mobilenet", "none", alpha=0.25).to_record()
    (features / "info.json").write_text(json.dumps(info))
    params = make_params(**{"head.epochs": 40, "head.patience": 5, "head.units": 16, "head.learning_rate": 0.01,
                            "head.input_dropout": 0.0, "head.l2": 0.0,
                            **overrides})
    model = train_head(params, Paths(tmp_path, features=features, resampled=features, models=tmp_path))
    return model, features


def test_head_beats_chance_on_separable_features(tmp_path):
    model, features = train(tmp_path)
    with np.load(features / "test.npz") as test:
        accuracy = (model.predict(test["features"], verbose=0).argmax(1) == test["labels"]).mean()
    assert accuracy > 0.9  # chance is 1/3


def test_history_model_and_info_are_saved(tmp_path):
    model, features = train(tmp_path)
    with open(tmp_path / "plots/head/history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    info = load_model_info(tmp_path / "head.keras")
    assert info["classes"] == ["big", "middle", "small"] and info["backbone"]["model"] == "mobilenet"
    assert info["backbone"]["mirror"] is False and info["preprocessing"]["region"]["bottom"] == 1.0
    # what it was trained on: the data extract recorded, the backbone, and the params' digest
    trained_on = info["trained_on"]
    assert trained_on["train_images"] == dict(zip(info["classes"], [30, 30, 30])) and trained_on["weights"] == "none"
    assert trained_on["backbone"] == "mobilenet" and len(trained_on["params_sha256"]) == 12
    # early stopping kept the epoch with the lowest validation loss
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert info["best_epoch"] == int(best["epoch"])
    loaded = keras.models.load_model(tmp_path / "head.keras", safe_mode=True)
    with np.load(features / "validation.npz") as validation:
        np.testing.assert_allclose(loaded.predict(validation["features"], verbose=0),
                                   model.predict(validation["features"], verbose=0), rtol=1e-6)
        # best_val_loss is the trained network's, before temperature scaling
        logits = keras.Model(model.inputs, model.get_layer("logits").output).predict(validation["features"], verbose=0)
        val_loss = keras.losses.sparse_categorical_crossentropy(
            validation["labels"], keras.ops.softmax(logits)).numpy().mean()
    np.testing.assert_allclose(val_loss, info["best_val_loss"], rtol=1e-3)


def test_two_runs_give_identical_weights(tmp_path):
    first, _ = train(tmp_path / "a")
    second, _ = train(tmp_path / "b")
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "a/plots/head/history.csv").read_bytes() == (tmp_path / "b/plots/head/history.csv").read_bytes()


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def nll(probabilities, labels):
    return float(-np.log(probabilities[np.arange(len(labels)), labels]).mean())


def test_fit_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (4000, 6))
    labels = np.array([rng.choice(6, p=p) for p in softmax(true_logits)])
    assert abs(fit_temperature(2.5 * true_logits, labels) - 2.5) < 0.2   # overconfident: T > 1
    assert abs(fit_temperature(0.5 * true_logits, labels) - 0.5) < 0.05  # underconfident: T < 1
    assert abs(fit_temperature(true_logits, labels) - 1.0) < 0.1
    # and it is the minimum of the validation NLL
    best = fit_temperature(2.5 * true_logits, labels)
    for other in (best * 0.8, best * 1.25):
        assert nll(softmax(2.5 * true_logits / best), labels) < nll(softmax(2.5 * true_logits / other), labels)


def test_temperature_scaling_keeps_every_prediction_and_lowers_validation_loss(tmp_path):
    # Noisy classes, so the head cannot be right everywhere and its confidence matters.
    model, features = train(tmp_path, counts={"train": [40, 40, 40], "validation": [30, 30, 30], "test": [20, 20, 20]},
                            separation=0.4, **{"head.epochs": 60, "head.patience": 60})
    info = load_model_info(tmp_path / "head.keras")
    to_logits = keras.Model(model.inputs, model.get_layer("logits").output)
    with np.load(features / "validation.npz") as validation:
        val_logits = to_logits.predict(validation["features"], verbose=0)
        val_labels = validation["labels"]
    assert info["temperature"] == fit_temperature(val_logits, val_labels) != 1.0
    with np.load(features / "test.npz") as test:
        logits = to_logits.predict(test["features"], verbose=0)
        calibrated = model.predict(test["features"], verbose=0)
    np.testing.assert_allclose(calibrated, softmax(logits / info["temperature"]), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(calibrated.argmax(1), logits.argmax(1))  # accuracy cannot change
    scaled_val = softmax(val_logits.astype(np.float64) / info["temperature"])
    assert nll(scaled_val, val_labels) < nll(softmax(val_logits.astype(np.float64)), val_labels)


def test_calibration_can_be_turned_off(tmp_path):
    model, features = train(tmp_path, **{"head.calibrate": False})
    assert load_model_info(tmp_path / "head.keras")["temperature"] == 1.0
    assert "temperature" not in [layer.name for layer in model.layers]
    with np.load(features / "test.npz") as test:
        logits = keras.Model(model.inputs, model.get_layer("logits").output).predict(test["features"], verbose=0)
        np.testing.assert_allclose(model.predict(test["features"], verbose=0), softmax(logits), rtol=1e-5)


def test_features_constant_in_training_cannot_swing_a_prediction(tmp_path):
    # A ReLU channel no training image turns on (here feature 0, always 0) must not decide a new image's class.
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (60, 8)).astype(np.float32)
    features[:, 0] = 0.0
    labels = (features[:, 1] > 0).astype(np.int64)
    model = build_head(features, 2, 16, 0.0, 0.01)
    assert ignore_constant_features(model.get_layer("standardize")) == 0  # build_head has done it already
    new = features[:5].copy()
    lit = new.copy()
    lit[:, 0] = 0.5
    model.fit(features, labels, epochs=3, verbose=0)
    np.testing.assert_allclose(model.predict(lit, verbose=0), model.predict(new, verbose=0), atol=1e-5)
    standardized = keras.ops.convert_to_numpy(model.get_layer("standardize")(lit))
    assert np.abs(standardized[:, 0]).max() < 1e-5 and np.abs(standardized[:, 1:]).max() > 0.01  # the others as before
    path = tmp_path / "head.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(lit, verbose=0), model.predict(lit, verbose=0), atol=1e-6)


def test_training_logs_a_few_progress_lines_not_kerass_per_epoch_output(tmp_path, caplog, capfd, monkeypatch):
    """Keras's own per-epoch lines are off; the progress line comes once per PROGRESS_SECONDS of epochs and for
    the last epoch run. With the interval at 0, every epoch gets one (as fine-tuning's do)."""
    import logging

    from fashion.models import head

    monkeypatch.setattr(head, "PROGRESS_SECONDS", 3600.0)  # longer than the training: the last epoch's line alone
    with caplog.at_level(logging.INFO, logger="fashion"):
        train(tmp_path / "grouped", **{"head.epochs": 12, "head.patience": 20})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train_head: ")]
    assert len(lines) == 1 and "; epoch 12/12: loss " in lines[0] and "training vectors/s" in lines[0]
    captured = capfd.readouterr()
    assert "Epoch 1/12" not in captured.out + captured.err and "step" not in captured.out

    caplog.clear()
    monkeypatch.setattr(head, "PROGRESS_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="fashion"):
        train(tmp_path / "each", **{"head.epochs": 12, "head.patience": 20})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train_head: ")]
    assert [line.split("; ")[1].split(":")[0] for line in lines] == [f"epoch {n}/12" for n in range(1, 13)]
    assert "val_accuracy" in lines[0] and "left" in lines[0]


def test_early_stopping_gets_its_own_last_progress_line(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="fashion"):
        train(tmp_path, separation=0.0, **{"head.epochs": 200, "head.patience": 2, "head.learning_rate": 0.05})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train_head: ")]
    assert lines[-1].endswith("early stopping ended it here") and "epoch 200/" not in lines[-1]
    assert len(lines) <= 3
