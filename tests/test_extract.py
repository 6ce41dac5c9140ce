"""The extract stage with real backbones: real MobileNet weights, random-init VGG16 and ResNet50."""

import logging
import shutil

import keras
import numpy as np
import pytest
import yaml

from fashion.data import dataset
from fashion.data.recipes import BackboneRecipe
from fashion.digests import file_sha256
from fashion.errors import PipelineError
from fashion.features.extraction import extract
from fashion.features.frozen_backbone import Ensemble, FeatureExtractor, MirrorAveraged, build_extractor
from fashion.features.store import load_split, read_info
from fashion.features.weights import weights_alpha
from fashion.paths import Paths
from fashion.runtime import make_reproducible
from fashion.serving.classify import load_classifier
from tests.helpers import MOBILENET_025, MOBILENET_V1, MOBILENET_V2, REPO, make_params, prepared_photos

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

SIZE = 64


def test_mobilenet_features_equal_plain_keras_with_preprocessing_applied_once(tmp_path):
    weights = str(MOBILENET_025())
    params, prepared = prepared_photos(tmp_path, size=SIZE, **{
        "features.weights": weights, "features.alpha": 0.25, "features.batch_size": 5})
    extract(params, Paths(tmp_path, prepared=prepared, features=tmp_path / "features"))

    records = dataset.read_manifest(prepared)
    images = np.load(prepared / dataset.IMAGES_FILE)
    reference = keras.applications.MobileNet(weights=weights, include_top=False, alpha=0.25,
                                             input_shape=(SIZE, SIZE, 3), pooling="avg")
    for split in dataset.SPLITS:
        features, labels = load_split(tmp_path / "features", split)
        rows, expected_labels = dataset.split_arrays(records, split)
        # the same images, in manifest order, scaled to [-1, 1] exactly once
        x = keras.applications.mobilenet.preprocess_input(images[rows].astype("float32"))
        expected = reference.predict(x, verbose=0)
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(labels, expected_labels)
        assert features.shape == (len(rows), 256)
    assert read_info(tmp_path / "features")["feature_dim"] == 256
    # real pretrained features carry information: photos differ from each other
    train, _ = load_split(tmp_path / "features", "train")
    assert train.std(axis=0).mean() > 0.01


@pytest.mark.parametrize("name, dim", [("vgg16", 512), ("resnet50", 2048), ("mobilenet_v2", 1280)])
def test_random_init_backbones_at_a_small_size(name, dim):
    keras.utils.set_random_seed(0)
    extractor = FeatureExtractor(name, 32, weights="none")
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    features = extractor(images)
    assert features.shape == (3, dim) and features.dtype == np.float32
    assert np.isfinite(features).all()
    # frozen and in inference mode: the same batch gives the same features
    assert not extractor.model.trainable
    np.testing.assert_array_equal(features, extractor(images))


def test_images_smaller_than_the_backbone_minimum_are_enlarged_to_32_pixels():
    """Fashion-MNIST at its own 28x28: keras.applications takes nothing under 32x32."""
    import tensorflow as tf

    weights = str(MOBILENET_025())
    images = np.random.default_rng(2).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    small = FeatureExtractor("mobilenet", 28, weights, alpha=0.25)
    assert small.input_size == 32 and small.image_size == 28
    enlarged = tf.image.resize(images.astype("float32"), (32, 32), method="bilinear").numpy()
    expected = FeatureExtractor("mobilenet", 32, weights, alpha=0.25)(enlarged)
    np.testing.assert_allclose(small(images), expected, rtol=1e-5, atol=1e-5)


def test_bfloat16_features_stay_close_to_float32():
    weights = str(MOBILENET_025())
    images = np.random.default_rng(1).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    exact = FeatureExtractor("mobilenet", SIZE, weights, alpha=0.25)(images)
    fast = FeatureExtractor("mobilenet", SIZE, weights, alpha=0.25, precision="bfloat16")(images)
    assert fast.dtype == np.float32
    assert np.corrcoef(exact.ravel(), fast.ravel())[0, 1] > 0.98
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No ImageNet weights to be had: an empty Keras cache and a proxy on a closed local port make
    the download fail the same way on any machine, connected or not."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras").mkdir()
    # Keras read KERAS_HOME when it was imported: point its cache folder at the empty one too.
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras"))
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")


def test_offline_imagenet_says_where_to_put_the_file(offline, tmp_path):
    with pytest.raises(PipelineError) as err:
        FeatureExtractor("vgg16", 32, weights="imagenet")
    message = str(err.value)
    assert "internet" in message
    assert str(tmp_path / "keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert "features.weights" in message and "none" in message


def test_offline_auto_without_weights_stops_with_the_three_ways_out(offline, caplog, capsys):
    """No silent chance: with nothing to load, auto stops instead of training on random weights."""
    for name, alpha in (("mobilenet", 0.5), ("vgg16", 1.0), ("mobilenet_v2", 1.0)):
        with pytest.raises(PipelineError) as err:
            FeatureExtractor(name, 32, weights="auto", alpha=alpha)
        message = str(err.value)
        assert f"no ImageNet weights for {name}" in message
        assert "-S features.weights=path/to/" in message and "internet" in message
        assert "-S features.weights=none" in message and "on purpose" in message
    captured = capsys.readouterr()
    assert "Downloading" not in captured.out + captured.err + caplog.text


def test_random_weights_asked_for_by_name_still_work_and_are_said(caplog):
    caplog.set_level(logging.INFO, logger="fashion")
    extractor = FeatureExtractor("mobilenet", 32, weights="none", alpha=0.25)
    assert extractor.weights_used == "none"
    assert "RANDOM weights, as asked" in caplog.text


def test_features_alpha_follows_a_weights_file_that_tells_its_width(caplog):
    """The README's neckline command passes a MobileNet 1.0 file with features.alpha left at 0.25."""
    caplog.set_level(logging.INFO, logger="fashion")
    wide = MOBILENET_V1()
    assert weights_alpha(wide, "mobilenet") == 1.0 and weights_alpha(MOBILENET_025(), "mobilenet") == 0.25
    assert weights_alpha(MOBILENET_V2(), "mobilenet_v2") == 1.0
    assert weights_alpha(REPO / "README.md", "mobilenet") is None  # not a weights file: nothing to tell
    extractor = build_extractor(BackboneRecipe(model="mobilenet", weights=str(wide), alpha=0.25), SIZE)
    assert extractor.recipe.alpha == 1.0 and extractor.dim == 1024
    assert "features.alpha follows the weights file: 1.0, not 0.25" in caplog.text
    # a file of the width asked for changes nothing
    assert build_extractor(BackboneRecipe(model="mobilenet", weights=str(MOBILENET_025()), alpha=0.25),
                           SIZE).recipe.alpha == 0.25


def test_offline_auto_uses_the_repository_weights_file_before_any_download(offline, caplog, capsys, tmp_path,
                                                                           monkeypatch):
    """The default (mobilenet, alpha 0.25, auto) on a machine with no Keras cache and no network: the
    repository's own file, found from any working directory, recorded relative to the repository."""
    caplog.set_level(logging.INFO, logger="fashion")
    monkeypatch.chdir(tmp_path)
    params = make_params()
    assert (params.model, params.features.alpha, params.features.weights) == ("mobilenet", 0.25, "auto")
    extractor = build_extractor(BackboneRecipe.from_params(params), SIZE)
    assert extractor.recipe.weights == "weights/mobilenet_0.25_224_no_top.h5"
    captured = capsys.readouterr()
    assert "Downloading" not in captured.out + captured.err + caplog.text
    assert "RANDOM" not in caplog.text and "uses the weights file weights/mobilenet_0.25_224_no_top.h5" in caplog.text
    # the same features as the shared copy of Keras's release file gives
    images = np.random.default_rng(3).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_array_equal(extractor(images),
                                  FeatureExtractor("mobilenet", SIZE, str(MOBILENET_025()), alpha=0.25)(images))


def test_the_repository_weights_file_is_the_shared_one_with_its_licence_and_origin():
    bundled = REPO / "weights" / "mobilenet_0.25_224_no_top.h5"
    assert file_sha256(bundled) == file_sha256(MOBILENET_025())
    licence = (REPO / "weights" / "LICENSE.apache-2.0").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence
    origin = (REPO / "weights" / "README.md").read_text()
    assert "Apache" in origin and "alpha" in origin and "224" in origin and "Keras" in origin
    assert "weights/mobilenet_0.25_224_no_top.h5" in yaml.safe_load((REPO / "dvc.yaml").read_text())[
        "stages"]["extract"]["deps"]


def test_auto_prefers_imagenet_weights_that_keras_has_cached(offline, tmp_path, caplog, capsys):
    cached = tmp_path / "keras" / "models" / "mobilenet_2_5_224_tf_no_top.h5"
    cached.parent.mkdir(parents=True)
    shutil.copy(MOBILENET_025(), cached)
    extractor = FeatureExtractor("mobilenet", SIZE, weights="auto", alpha=0.25)
    assert extractor.weights_used == "imagenet"
    assert "Downloading" not in capsys.readouterr().out + caplog.text


def test_wrong_or_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        FeatureExtractor("mobilenet", 32, weights=str(tmp_path / "missing.h5"))
    with pytest.raises(PipelineError, match=r"does not fit the backbone asked for, mobilenet with alpha 1 .*it "
                                            r"seems to be for mobilenet at another width \(features.alpha\)"):
        FeatureExtractor("mobilenet", 32, weights=str(MOBILENET_025()), alpha=1.0)
    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    with pytest.raises(PipelineError, match=r"notes.h5 is not a Keras weights file"):
        FeatureExtractor("mobilenet", 32, weights=str(text))


@pytest.mark.parametrize("model, file, seems", [
    ("mobilenet_v2", MOBILENET_V1, "it seems to be for mobilenet."),      # Keras 3 .weights.h5: layer types tell
    ("mobilenet", MOBILENET_V2, "it seems to be for mobilenet_v2."),
    ("mobilenet_v2", MOBILENET_025, "it seems to be for mobilenet."),     # the older .h5: layer names tell
    ("vgg16", MOBILENET_V1, "it seems to be for mobilenet."),
])
def test_a_weights_file_for_another_backbone_is_one_short_error_naming_both(model, file, seems):
    path = file()
    with pytest.raises(PipelineError) as caught:
        FeatureExtractor(model, 32, weights=str(path))
    message = str(caught.value)
    assert f"features.weights: {path} does not fit the backbone asked for, {model}" in message and seems in message
    assert "\n" not in message and len(message) < 500


def test_the_extract_stage_with_a_wrong_weights_file_prints_a_few_lines_and_no_arrays(tmp_path):
    """As the user saw it: `model: mobilenet_v2` with MobileNet v1 weights, the stage in its own process."""
    import os
    import subprocess
    import sys

    import yaml

    from tests.helpers import REPO

    params, prepared = prepared_photos(tmp_path, per_class=3, size=32, **{
        "model": "mobilenet_v2", "features.weights": str(MOBILENET_V1()), "features.alpha": 1.0})
    (tmp_path / "data").mkdir()
    prepared.rename(tmp_path / "data/prepared")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump()))

    result = subprocess.run([sys.executable, "-m", "stages.extract"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})

    output = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 2
    errors = [line for line in output if line.startswith("error:")]
    assert len(errors) == 1 and "mobilenet_1.0_224_no_top.weights.h5" in errors[0]
    assert "asked for, mobilenet_v2 with alpha 1" in errors[0] and "it seems to be for mobilenet." in errors[0]
    assert len(output) < 20, "\n".join(output)  # was 345 lines: Keras warnings and weight arrays
    assert not any("array(" in line or "Traceback" in line for line in output)
    assert not (tmp_path / "data/features").exists()


def test_missing_prepared_data_asks_to_run_prepare(tmp_path):
    params, _ = prepared_photos(tmp_path, size=SIZE, **{"features.weights": "none"})
    with pytest.raises(PipelineError, match="dvc repro"):
        extract(params, Paths(tmp_path, prepared=tmp_path / "nothing", features=tmp_path / "features"))
    assert not (tmp_path / "features").exists()


def test_two_backbones_side_by_side_give_each_ones_features_concatenated(tmp_path):
    """model: mobilenet+mobilenet_v2 with a weights file for one and random weights for the other."""
    from fashion.models.head import train_head

    weights = str(MOBILENET_025())
    params, prepared = prepared_photos(tmp_path, size=SIZE, **{
        "model": "mobilenet+mobilenet_v2", "features.alpha": 0.25,
        "features.weights": {"mobilenet": weights, "mobilenet_v2": "none"},
        "head.epochs": 2, "head.units": 8})
    extractor = extract(params, Paths(tmp_path, prepared=prepared, features=tmp_path / "features"))
    assert isinstance(extractor, Ensemble) and extractor.dim == 256 + 1280
    info = read_info(tmp_path / "features")
    assert info["backbone"]["model"] == "mobilenet+mobilenet_v2" and info["feature_dim"] == 1536
    assert info["backbone"]["weights"] == {"mobilenet": weights, "mobilenet_v2": "none"}

    # The same as each backbone built on its own, in the order named, from the same seed.
    make_reproducible(params.seed)
    alone = [FeatureExtractor("mobilenet", SIZE, weights, alpha=0.25),
             FeatureExtractor("mobilenet_v2", SIZE, "none", alpha=0.25)]
    images = np.load(prepared / dataset.IMAGES_FILE)
    rows, _ = dataset.split_arrays(dataset.read_manifest(prepared), "test")
    features, _ = load_split(tmp_path / "features", "test")
    np.testing.assert_allclose(features, np.concatenate([e(images[rows]) for e in alone], axis=1), rtol=1e-5, atol=1e-5)

    # Prediction rebuilds both backbones from the head's record and gets the same features.
    train_head(params, Paths(tmp_path, features=tmp_path / "features", resampled=tmp_path / "features"))
    classifier = load_classifier("head", tmp_path / "models", with_backbone=True)
    np.testing.assert_allclose(classifier.extractor(images[rows]), features, rtol=1e-5, atol=1e-5)


def test_mirror_averages_each_images_features_with_its_mirror_images(tmp_path):
    from fashion.models.head import train_head

    weights = str(MOBILENET_025())
    params, prepared = prepared_photos(tmp_path, size=SIZE, **{
        "features.weights": weights, "features.alpha": 0.25, "features.mirror": True, "features.batch_size": 4,
        "head.epochs": 2, "head.units": 8})
    extractor = extract(params, Paths(tmp_path, prepared=prepared, features=tmp_path / "features"))
    assert isinstance(extractor, MirrorAveraged) and extractor.dim == 256
    assert read_info(tmp_path / "features")["backbone"]["mirror"] is True

    plain = FeatureExtractor("mobilenet", SIZE, weights, alpha=0.25)
    images = np.load(prepared / dataset.IMAGES_FILE)
    rows, _ = dataset.split_arrays(dataset.read_manifest(prepared), "train")
    features, _ = load_split(tmp_path / "features", "train")
    as_is, mirrored = plain(images[rows]), plain(images[rows][:, :, ::-1])
    np.testing.assert_allclose(features, (as_is + mirrored) / 2, rtol=1e-5, atol=1e-5)
    assert np.abs(as_is - mirrored).mean() > 0.01  # photos are not symmetric: the mirror adds something

    train_head(params, Paths(tmp_path, features=tmp_path / "features", resampled=tmp_path / "features"))
    classifier = load_classifier("head", tmp_path / "models", with_backbone=True)
    assert isinstance(classifier.extractor, MirrorAveraged)
    np.testing.assert_allclose(classifier.extractor(images[rows]), features, rtol=1e-5, atol=1e-5)
