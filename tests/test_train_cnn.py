"""The train_cnn stage with real TensorFlow on a tiny prepared data set: layout, learning, repeatability, errors."""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest
from PIL import Image

from fashion.data import dataset
from fashion.data.pixel_batches import ImageBatches, balanced_class_weights
from fashion.data.preparation import prepare
from fashion.errors import PipelineError, run_stage
from fashion.models.cnn import build_cnn, front_inputs, split_front, train_cnn
from fashion.params import load_params
from fashion.paths import Paths
from fashion.presets import preset

ORIGINAL_LAYOUT = preset("cnn_original")
from fashion.models.training import load_model_info
from tests.helpers import REPO, make_params

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

COLOURS = {"blue": (40, 60, 200), "green": (40, 180, 60), "red": (200, 40, 40)}
PREPARED_SIZE = 32
NO_AUGMENT = {"cnn.augment.flip": False, "cnn.augment.rotation": 0, "cnn.augment.zoom": 0,
              "cnn.augment.shift": 0, "cnn.augment.brightness": 0, "cnn.augment.contrast": 0,
              "cnn.augment.channel_shuffle": False, "cnn.augment.invert": 0}
ALL_AUGMENT = {"cnn.augment.flip": True, "cnn.augment.rotation": 0.05, "cnn.augment.zoom": 0.1,
               "cnn.augment.shift": 0.1, "cnn.augment.brightness": 0.2, "cnn.augment.contrast": 0.2,
               "cnn.augment.channel_shuffle": True, "cnn.augment.invert": 0.5}
WHOLE_IMAGE = {"cnn.region": {"top": 0.0, "bottom": 1.0, "left": 0.0, "right": 1.0}}
# The test classes differ only by colour: the necklines recipe's colour invariances would hide them.
COLOUR_MATTERS = {**WHOLE_IMAGE, "cnn.standardize": False, "cnn.augment.channel_shuffle": False,
                  "cnn.augment.invert": 0}
# A network small enough to train in seconds; augmentation stays on so training exercises it.
TINY_CNN = {"cnn.image_size": 16, "cnn.filters": [8, 16], "cnn.dense_units": [16], "cnn.dropout": 0.1,
            "cnn.epochs": 6, "cnn.patience": 6, "cnn.learning_rate": 0.01, "cnn.batch_size": 8, **COLOUR_MATTERS}
# The default recipe's layers (cut-out, standardisation, channel shuffle, inversion) on the same tiny network.
TINY_DEFAULT_RECIPE = {**TINY_CNN, "cnn.epochs": 1, "cnn.region": {"top": 0.0, "bottom": 0.5, "left": 0.25,
                                                                  "right": 0.75},
                       "cnn.standardize": True, "cnn.augment.channel_shuffle": True, "cnn.augment.invert": 0.5}
# params.yaml's cnn section before the necklines recipe: ORIGINAL_LAYOUT must give it back exactly.
EARLIER_DEFAULT_CNN = {
    "image_size": 64, "filters": [32, 64, 128, 256], "convolutions": 1, "dense_units": [512, 256], "dropout": 0.5,
    "batch_norm": False, "pooling": "flatten", "epochs": 20, "patience": 5, "reduce_lr_patience": 0,
    "learning_rate": 0.001, "schedule": "constant", "weight_decay": 0.0, "label_smoothing": 0.0, "batch_size": 32,
    "class_weight": True, "calibrate": True,
    "augment": {"flip": True, "rotation": 0.03, "zoom": 0.1, "shift": 0.1, "brightness": 0.2, "contrast": 0.2,
                "hue": 0.0, "grayscale": 0.0}}


def write_colour_photos(folder, per_class, rng):
    """One class folder per colour: noisy 40x40 PNGs of that colour, easy to tell apart."""
    for name, colour in COLOURS.items():
        (folder / name).mkdir(parents=True)
        for index in range(per_class):
            noise = rng.normal(0, 25, (40, 40, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{index:02d}.png")
    return folder


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("colours")
    photos = write_colour_photos(root / "photos", per_class=20, rng=np.random.default_rng(0))
    params = make_params(**{"data.source": "folder", "data.path": str(photos),
                            "data.image_size": PREPARED_SIZE, "split.validation": 0.25})
    prepare(params, Paths(root, prepared=root / "prepared"))
    return root / "prepared"


def run_paths(folder, prepared=None):
    return Paths(folder, prepared=prepared)


@pytest.fixture(scope="module")
def two_runs(prepared, tmp_path_factory):
    """The stage run twice with the same params on the same data: (paths, model, metrics) per run."""
    runs = []
    for name in ("first", "second"):
        paths = run_paths(tmp_path_factory.mktemp(name))
        model, metrics = train_cnn(make_params(**TINY_CNN), replace(paths, prepared=prepared))
        runs.append((paths, model, metrics))
    return runs


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


# --- the network -------------------------------------------------------------------------

def test_the_original_layout_gives_back_the_earlier_default_exactly():
    cnn = make_params(**ORIGINAL_LAYOUT).cnn.model_dump()
    # the keys that came later are off: the whole image, as it is, no colour augmentation
    assert cnn.pop("region") == WHOLE_IMAGE["cnn.region"] and cnn.pop("standardize") is False
    assert cnn["augment"].pop("channel_shuffle") is False and cnn["augment"].pop("invert") == 0
    assert cnn == EARLIER_DEFAULT_CNN


def test_the_original_layout_is_the_original_network():
    params = make_params(**{**ORIGINAL_LAYOUT, "cnn.image_size": 32})
    model = build_cnn(5, 32, params.cnn, seed=1)

    core = [layer for layer in model.layers if not layer.name.startswith(("image", "random_", "rescale"))]
    assert [type(layer).__name__ for layer in core] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
        "Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense", "Softmax"]
    convs = layers_of(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [32, 64, 128, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" and c.activation.__name__ == "relu" for c in convs)
    assert all(p.pool_size == (2, 2) for p in layers_of(model, keras.layers.MaxPooling2D))
    dense = layers_of(model, keras.layers.Dense)
    assert [d.units for d in dense] == [512, 256, 5]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "linear"]  # logits, then the softmax
    assert [d.rate for d in layers_of(model, keras.layers.Dropout)] == [0.5, 0.5]
    assert model.output_shape == (None, 5)
    # By hand, at 32x32: convs 3*3*in*out + out; four poolings leave 2x2x256 = 1024 values to flatten.
    convolutions = (27 * 32 + 32) + (288 * 64 + 64) + (576 * 128 + 128) + (1152 * 256 + 256)
    dense_weights = (1024 * 512 + 512) + (512 * 256 + 256) + (256 * 5 + 5)
    assert model.count_params() == convolutions + dense_weights == 1_045_829


def test_preprocessing_order_and_resizing_inside_the_model():
    params = make_params(**{"cnn.image_size": 32, **ALL_AUGMENT, **WHOLE_IMAGE, "cnn.standardize": False})
    names = [layer.name for layer in build_cnn(3, 64, params.cnn, seed=1).layers]
    assert names[:12] == ["image", "resize", "random_flip", "random_rotation", "random_zoom", "random_shift",
                          "random_brightness", "random_contrast", "random_channel_shuffle", "random_invert",
                          "rescale", "conv1"]
    model = build_cnn(3, 32, make_params(**{"cnn.image_size": 32, **NO_AUGMENT, **COLOUR_MATTERS}).cnn, seed=1)
    assert [layer.name for layer in model.layers[:3]] == ["image", "rescale", "conv1"]  # same size: no resizing
    # the default recipe: cut out the region, resize it, augment, rescale, standardise
    model = build_cnn(3, 64, make_params(**{"cnn.image_size": 16, **NO_AUGMENT}).cnn, seed=1)
    assert [layer.name for layer in model.layers[:6]] == ["image", "region", "resize", "rescale", "standardize",
                                                          "conv1"]


def test_the_region_is_cut_out_inside_the_model_as_at_training():
    # 40 px prepared images, the upper half and middle half: a 20x20 cut-out, the network's own size
    cnn = make_params(**{**NO_AUGMENT, "cnn.image_size": 20, "cnn.filters": [4], "cnn.dense_units": [],
                         "cnn.standardize": False,
                         "cnn.region": {"top": 0.0, "bottom": 0.5, "left": 0.25, "right": 0.75}}).cnn
    model = build_cnn(3, 40, cnn, seed=1)
    x = np.random.default_rng(0).uniform(0, 255, (2, 40, 40, 3)).astype(np.float32)
    seen = keras.Model(model.input, model.get_layer("rescale").output)
    np.testing.assert_allclose(seen.predict(x, verbose=0), x[:, :20, 10:30] / 255, rtol=1e-6)
    # what lies outside the region cannot change a prediction
    outside = x.copy()
    outside[:, 20:], outside[:, :, :10] = 0, 255
    assert np.array_equal(model.predict(outside, verbose=0), model.predict(x, verbose=0))


def test_training_runs_the_region_and_resize_once_and_trains_the_models_own_layers(tmp_path):
    # train_cnn fits a body of the model's layers after the cut-out and the resize on their precomputed output
    cnn = make_params(**{**ALL_AUGMENT, "cnn.image_size": 16, "cnn.filters": [4, 8], "cnn.dense_units": [],
                         "cnn.region": {"top": 0.0, "bottom": 0.5, "left": 0.25, "right": 0.75}}).cnn
    model = build_cnn(3, 40, cnn, seed=1)
    front, body = split_front(model)
    assert [layer.name for layer in front.layers] == ["image", "region", "resize"]
    assert body.layers[1] is model.get_layer("random_flip") and body.layers[-1] is model.get_layer("probabilities")
    x = np.random.default_rng(0).integers(0, 256, (6, 40, 40, 3), dtype=np.uint8)
    writer = dataset.ImageStoreWriter(tmp_path / "images.npy", 40)
    writer.append(x)
    writer.close()
    chosen = x[[4, 0, 2]].astype(np.float32)
    with dataset.ImageStore(tmp_path / "images.npy") as store:
        stored = front_inputs(front, store, np.array([4, 0, 2]), tmp_path / "front.npy", batch_size=2)
    np.testing.assert_array_equal(stored.read(np.arange(3)), front.predict(chosen, verbose=0))
    np.testing.assert_array_equal(stored.read(np.array([2, 0])), stored.read(np.arange(3))[[2, 0]])
    np.testing.assert_allclose(body.predict(stored.read(np.arange(3)), verbose=0), model.predict(chosen, verbose=0),
                               rtol=1e-5, atol=1e-6)
    before = model.get_layer("conv1").get_weights()[0].copy()
    body.fit(stored.read(np.arange(3)), np.eye(3, dtype=np.float32), epochs=1, verbose=0)
    stored.close()
    assert not np.array_equal(model.get_layer("conv1").get_weights()[0], before)  # the model's own weights trained
    # nothing to run once: the whole image at the network's size
    whole = build_cnn(3, 16, make_params(**{**NO_AUGMENT, **WHOLE_IMAGE, "cnn.image_size": 16,
                                            "cnn.filters": [4]}).cnn, seed=1)
    assert split_front(whole) == (None, whole)


def test_standardizing_removes_the_colour_cast_and_brightness():
    cnn = make_params(**{**NO_AUGMENT, **WHOLE_IMAGE, "cnn.image_size": 16, "cnn.filters": [4],
                         "cnn.dense_units": [], "cnn.standardize": True}).cnn
    model = build_cnn(3, 16, cnn, seed=1)
    x = np.random.default_rng(0).uniform(60, 160, (2, 16, 16, 3)).astype(np.float32)
    standardized = keras.Model(model.input, model.get_layer("standardize").output).predict(x, verbose=0)
    np.testing.assert_allclose(standardized.mean(axis=(1, 2)), 0, atol=1e-5)
    # sd 1 up to LayerNormalization's epsilon (1e-3 against a variance of ~0.01 here)
    assert np.all((standardized.std(axis=(1, 2)) > 0.9) & (standardized.std(axis=(1, 2)) <= 1))
    # the same photo with another colour cast and brightness: the same prediction
    recoloured = x + np.array([40, -30, 10], dtype=np.float32)
    np.testing.assert_allclose(model.predict(recoloured, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_channel_shuffle_and_invert_change_colours_only():
    from fashion.models.cnn_layers import RandomChannelShuffle, RandomInvert

    x = np.broadcast_to(np.array([10, 100, 200], dtype=np.float32), (64, 4, 4, 3)).copy()
    shuffled = keras.ops.convert_to_numpy(RandomChannelShuffle(seed=1)(x, training=True))
    orders = {tuple(image[0, 0]) for image in shuffled}
    assert all(sorted(order) == [10, 100, 200] for order in orders) and len(orders) == 6  # 64 images: all 6
    assert np.array_equal(keras.ops.convert_to_numpy(RandomChannelShuffle(seed=1)(x, training=False)), x)
    always = keras.ops.convert_to_numpy(RandomInvert(1.0, seed=1)(x, training=True))
    assert np.array_equal(always, 255 - x)
    half = keras.ops.convert_to_numpy(RandomInvert(0.5, seed=1)(x, training=True))
    inverted = np.all(half == 255 - x, axis=(1, 2, 3))
    assert np.all(inverted | np.all(half == x, axis=(1, 2, 3))) and 10 < inverted.sum() < 54
    assert np.array_equal(keras.ops.convert_to_numpy(RandomInvert(1.0, seed=1)(x, training=False)), x)


def test_batch_norm_and_global_average_options():
    params = make_params(**{**ORIGINAL_LAYOUT, "cnn.image_size": 32, "cnn.batch_norm": True,
                            "cnn.pooling": "global_average"})
    model = build_cnn(4, 32, params.cnn, seed=1)

    core = [type(layer).__name__ for layer in model.layers if layer.name.startswith(("conv", "batch_norm", "relu",
                                                                                     "pool", "global"))]
    assert core == ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"] * 4 + ["GlobalAveragePooling2D"]
    assert not any(isinstance(layer, keras.layers.Flatten) for layer in model.layers)
    # global average pooling hands dense1 one value per filter of the last block: 256, not 2*2*256
    assert model.get_layer("dense1").kernel.shape == (256, 512)
    original = make_params(**{**ORIGINAL_LAYOUT, "cnn.image_size": 32}).cnn
    assert model.count_params() < build_cnn(4, 32, original, 1).count_params()


def test_too_many_poolings_for_the_image_size_is_a_clear_error():
    # caught when params.yaml is read, before any stage starts
    with pytest.raises(PipelineError, match="'cnn.image_size' 16 is too small for 5 convolution blocks"):
        make_params(**{"cnn.image_size": 16, "cnn.filters": [8, 8, 8, 8, 8]})


def test_augmentation_acts_only_in_training():
    # no dropout: only the augmentation is random
    params = make_params(**{"cnn.image_size": 32, "cnn.dropout": 0.0, **ALL_AUGMENT, **WHOLE_IMAGE,
                            "cnn.standardize": False})
    model = build_cnn(3, 32, params.cnn, seed=1)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)

    inference = model(x, training=False).numpy()
    assert np.array_equal(inference, model(x, training=False).numpy())
    assert np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_allclose(model.predict(x, verbose=0), inference, rtol=1e-5, atol=1e-7)
    preprocessing = keras.Model(model.input, model.get_layer("rescale").output)
    np.testing.assert_allclose(preprocessing(x, training=False).numpy(), x / 255, rtol=1e-6)  # untouched image
    # in training the augmentation changes the input, so the same images give other outputs each time
    augmented = [model(x, training=True).numpy() for _ in range(2)]
    assert not np.allclose(augmented[0], augmented[1])
    assert not np.allclose(augmented[0], inference)


def test_saved_model_loads_in_safe_mode_with_the_same_predictions(two_runs, prepared):
    paths, model, _ = two_runs[0]
    loaded = keras.models.load_model(paths.cnn, safe_mode=True)
    rows, _ = dataset.split_arrays(dataset.read_manifest(prepared), "test")
    with dataset.ImageStore(prepared / dataset.IMAGES_FILE) as store:
        images = store.read(rows).astype(np.float32)
    assert np.array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_the_default_recipe_saves_its_region_and_layers_and_prediction_uses_them(prepared, tmp_path):
    from fashion.serving.classify import load_classifier

    paths = run_paths(tmp_path)
    model, _ = train_cnn(make_params(**TINY_DEFAULT_RECIPE), replace(paths, prepared=prepared))
    classifier = load_classifier("cnn", paths.cnn.parent)  # as predict, serve and evaluate load it
    names = [layer.name for layer in classifier.model.layers]
    assert names[:2] == ["image", "region"] and {"standardize", "random_channel_shuffle", "random_invert"} <= set(names)
    assert "resize" not in names  # the 16x16 cut-out of the 32 px images is already the network's size
    rows, _ = dataset.split_arrays(dataset.read_manifest(prepared), "test")
    with dataset.ImageStore(prepared / dataset.IMAGES_FILE) as store:
        images = store.read(rows).astype(np.float32)
    expected = model.predict(images, verbose=0)
    assert np.array_equal(classifier.model.predict(images, verbose=0), expected)
    # the loaded model cuts out the same 16x16 region of the 32 px images: outside it nothing counts
    seen = keras.Model(classifier.model.input, classifier.model.get_layer("region").output)
    np.testing.assert_array_equal(seen.predict(images, verbose=0), images[:, :16, 8:24])
    outside = images.copy()
    outside[:, 16:] = 0
    assert np.array_equal(classifier.model.predict(outside, verbose=0), expected)


# --- the data ----------------------------------------------------------------------------

def test_batches_stream_every_row_once_per_epoch_in_a_seeded_order(prepared):
    records = dataset.read_manifest(prepared)
    rows, labels = dataset.split_arrays(records, "train")
    with dataset.ImageStore(prepared / dataset.IMAGES_FILE) as store:
        classes = len(dataset.read_summary(prepared)["classes"])
        batches = ImageBatches(store, rows, labels, classes, batch_size=8, seed=3)
        again = ImageBatches(store, rows, labels, classes, batch_size=8, seed=3)
        orders = []
        for _ in range(2):
            epoch = [batches[i] for i in range(len(batches))]
            assert len(batches) == 5 and [len(b[1]) for b in epoch] == [8, 8, 8, 8, 4]
            assert all(images.dtype == np.float32 and images.shape[1:] == (32, 32, 3) for images, _ in epoch)
            orders.append(batches.order.copy())
            assert sorted(rows[batches.order].tolist()) == sorted(rows.tolist())  # every row once
            # each batch holds the images and labels of the rows it names
            first = batches.order[:8]
            assert np.array_equal(epoch[0][0], store.read(rows[first]).astype(np.float32))
            assert np.array_equal(epoch[0][1].argmax(axis=1), labels[first])  # one-hot, for label smoothing
            assert epoch[0][1].shape == (8, classes) and np.all(epoch[0][1].sum(axis=1) == 1)
            batches.on_epoch_end()
        assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
        assert np.array_equal(again.order, orders[0])  # the same seed gives the same orders

        validation_rows, validation_labels = dataset.split_arrays(records, "validation")
        validation = ImageBatches(store, validation_rows, validation_labels, classes, batch_size=4)
        validation.on_epoch_end()
        assert np.array_equal(np.concatenate([validation[i][1] for i in range(len(validation))]).argmax(axis=1),
                              validation_labels)


def test_class_weights_are_balanced():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = balanced_class_weights(labels, 3)
    assert weights == pytest.approx({0: 10 / 18, 1: 10 / 9, 2: 10 / 3})
    # every class then carries the same total weight
    assert {round(weights[c] * n, 9) for c, n in enumerate(np.bincount(labels))} == {round(10 / 3, 9)}
    from sklearn.utils.class_weight import compute_class_weight
    assert list(weights.values()) == pytest.approx(compute_class_weight("balanced", classes=np.arange(3), y=labels))


# --- training ----------------------------------------------------------------------------

def test_training_learns_far_better_than_chance(two_runs, prepared):
    paths, model, metrics = two_runs[0]
    assert metrics["best_val_accuracy"] >= 0.9  # chance is 1/3
    rows, labels = dataset.split_arrays(dataset.read_manifest(prepared), "test")
    with dataset.ImageStore(prepared / dataset.IMAGES_FILE) as store:
        predicted = model.predict(store.read(rows).astype(np.float32), verbose=0).argmax(axis=1)
    assert (predicted == labels).mean() >= 0.8

    # Temperature scaling on validation: the saved network divides its logits by T before the softmax.
    with dataset.ImageStore(prepared / dataset.IMAGES_FILE) as store:
        images = store.read(rows).astype(np.float32)
    logits = keras.Model(model.inputs, model.get_layer("logits").output).predict(images, verbose=0)
    assert metrics["temperature"] > 0 and metrics["temperature"] != 1.0
    np.testing.assert_allclose(model.predict(images, verbose=0),
                               keras.ops.convert_to_numpy(keras.ops.softmax(logits / metrics["temperature"])),
                               rtol=1e-4, atol=1e-6)

    assert metrics["train_images"] == 36 and metrics["validation_images"] == 15
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 6
    assert json.loads(paths.cnn_train.read_text()) == metrics
    info = load_model_info(paths.cnn)
    assert info["kind"] == "cnn" and info["classes"] == ["blue", "green", "red"]
    assert info["preprocessing"]["image_size"] == PREPARED_SIZE and info["preprocessing"]["resize"] == "pad"
    assert (info["best_epoch"], info["epochs_run"]) == (metrics["best_epoch"], metrics["epochs_run"])
    assert info["temperature"] == metrics["temperature"]
    history = paths.history("cnn").read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
    assert len(history) == metrics["epochs_run"] + 1
    assert not [p for p in paths.cnn.parent.iterdir() if p.name.startswith(".")]  # no temporary files


def test_same_params_and_data_give_identical_weights_and_history(two_runs):
    (first, _, first_metrics), (second, _, second_metrics) = two_runs
    weights = [keras.models.load_model(run.cnn, safe_mode=True).get_weights() for run in (first, second)]
    assert len(weights[0]) == len(weights[1]) > 0
    for a, b in zip(*weights):
        assert np.array_equal(a, b)
    assert first.history("cnn").read_bytes() == second.history("cnn").read_bytes()
    assert first_metrics["best_val_loss"] == second_metrics["best_val_loss"]


# --- errors ------------------------------------------------------------------------------

def test_missing_prepared_data_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="not found; run `dvc repro` first"):
        train_cnn(make_params(**TINY_CNN), replace(run_paths(tmp_path), prepared=tmp_path / "prepared"))


def rewrite_splits(prepared, target, change):
    """A copy of the prepared data set whose manifest has `change(record)` applied to every record."""
    target.mkdir()
    for name in (dataset.IMAGES_FILE, dataset.SUMMARY_FILE):
        (target / name).symlink_to(prepared / name)
    records = dataset.read_manifest(prepared)
    for record in records:
        change(record)
    dataset.write_manifest(target / dataset.MANIFEST_FILE, records)
    return target


@pytest.mark.parametrize("change, expected", [
    (lambda r: r.update(split="train") if r["split"] == "validation" else None, "validation split .* is empty"),
    (lambda r: r.update(split="test"), "train split .* is empty"),
    (lambda r: r.update(split="test") if r["label"] == "green" and r["split"] == "train" else None,
     "green have no training images"),
])
def test_unusable_splits_are_clear_errors_and_keep_earlier_outputs(prepared, tmp_path, change, expected):
    broken = rewrite_splits(prepared, tmp_path / "broken", change)
    paths = run_paths(tmp_path)
    paths.cnn_train.parent.mkdir()
    paths.cnn_train.write_text("{}")
    with pytest.raises(PipelineError, match=expected):
        train_cnn(make_params(**TINY_CNN), replace(paths, prepared=broken))
    assert paths.cnn_train.read_text() == "{}"


def test_command_line_error_has_no_traceback(tmp_path, monkeypatch, capsys):
    # the stage as `python -m stages.train_cnn` runs it, in-process: a new interpreter would reload TensorFlow.
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_stage(lambda: train_cnn(load_params(), Paths()))
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr == "error: data/prepared/summary.json not found; run `dvc repro` first\n"
    assert not (tmp_path / "models").exists()
