"""A saved model's bytes depend on the model alone: no save date, no zip time stamps, no memory addresses."""

import time
import zipfile

import numpy as np

from fashion.models.training import write_keras
from fashion.runtime import make_reproducible


def tiny_model(seed):
    import keras

    keras.backend.clear_session()  # layer names restart, as in a stage's own process
    make_reproducible(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(4, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_two_saves_of_equal_models_are_byte_identical_and_load_back(tmp_path):
    import keras

    first, second = tiny_model(7), tiny_model(7)  # equal weights, other Python objects (other addresses)
    write_keras(first, tmp_path / "a.keras")
    time.sleep(1.1)  # another second on the clock: a stamped date would differ
    write_keras(second, tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as archive:
        assert b"date_saved" not in archive.read("metadata.json")
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    loaded = keras.saving.load_model(tmp_path / "a.keras")
    np.testing.assert_array_equal(loaded.predict_on_batch(x), first.predict_on_batch(x))
    # another model gives other bytes: the file is not a constant
    write_keras(tiny_model(8), tmp_path / "c.keras")
    assert (tmp_path / "c.keras").read_bytes() != (tmp_path / "a.keras").read_bytes()
