"""The finetune stage on real photos with the real MobileNet 0.25 weights: what trains, what stays frozen,
that the saved model round-trips, and that turning it off leaves a record and nothing else."""

import csv
import json
import shutil

import numpy as np
import pytest

from fashion.data import dataset
from fashion.data.recipes import BackboneRecipe
from fashion.errors import PipelineError
from fashion.names import BLOCKS
from fashion.paths import Paths
from fashion.serving.classify import load_classifier
from tests.helpers import make_params, override

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def finetuned_parts(root):
    """(the saved fine-tuned model, its backbone, the same backbone fresh from the weights file, its record)."""
    import keras

    import fashion.models.finetune_model as finetuning

    info = json.loads((root / "models/finetuned/finetuned.json").read_text())
    model = keras.saving.load_model(root / "models/finetuned/finetuned.keras", compile=False)
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    recipe = BackboneRecipe.from_record(info["backbone"], "finetuned.json")
    fresh = finetuning.build_backbone(recipe, info["preprocessing"]["image_size"])
    return model, backbone, fresh, info


def test_only_the_top_blocks_learn_and_batch_norm_statistics_never_move(trained):
    from keras import layers

    from fashion.models.finetune_model import backbone_blocks

    params, root = trained
    model, backbone, fresh, info = finetuned_parts(root)
    assert info["unfreeze"] == params.finetune.unfreeze == 2
    opened = {layer.name for block in backbone_blocks(fresh, "mobilenet")[-2:] for layer in block}
    changed, frozen_checked, batch_norm_checked = set(), 0, 0
    for original in fresh.layers:
        weights = original.get_weights()
        if not weights:
            continue
        after = backbone.get_layer(original.name).get_weights()
        differs = any(not np.array_equal(a, b) for a, b in zip(weights, after))
        if isinstance(original, layers.BatchNormalization):
            assert not differs, f"{original.name}: gamma, beta or moving statistics changed"
            batch_norm_checked += 1
        elif original.name in opened:
            if differs:
                changed.add(original.name)
        else:
            assert not differs, f"{original.name} is below the opened blocks but changed"
            frozen_checked += 1
    assert changed == {name for name in opened if "bn" not in name and fresh.get_layer(name).get_weights()}
    assert changed and frozen_checked > 10 and batch_norm_checked > 20


def test_the_head_starts_from_its_trained_weights_and_then_trains(trained):
    """Before any training the fine-tuning model computes exactly the head on the extract stage's features:
    preprocess_input once, the same backbone, the head's own weights."""
    import keras

    from fashion.features.frozen_backbone import build_extractor
    from fashion.models.finetune_model import build_model

    params, root = trained
    head = keras.saving.load_model(root / "models/head.keras", compile=False)
    head_logits = keras.Model(head.inputs, head.get_layer("logits").output)
    info = json.loads((root / "models/head.json").read_text())
    recipe = BackboneRecipe.from_record(info["backbone"], "head.json")
    with dataset.ImageStore(root / "data/prepared/images.npy") as store:
        images = store.read(np.arange(6))
        size = store.size
    expected = head_logits.predict_on_batch(build_extractor(recipe, size)(images))

    model = build_model(head, recipe, size, params.finetune, params.seed, steps_per_epoch=1)
    logits = keras.Model(model.inputs, model.get_layer("probabilities").input)
    np.testing.assert_allclose(logits.predict_on_batch(images.astype(np.float32)), expected, atol=1e-4)

    tuned = keras.saving.load_model(root / "models/finetuned/finetuned.keras", compile=False)
    assert not np.array_equal(tuned.get_layer("dense").get_weights()[0], head.get_layer("dense").get_weights()[0])


def test_saved_model_loads_in_safe_mode_with_the_same_probabilities(trained, tmp_path):
    import keras

    from fashion.models.finetune import finetune

    params, root = trained
    (tmp_path / "models").mkdir()
    for name in ("head.keras", "head.json"):
        shutil.copy(root / "models" / name, tmp_path / "models" / name)
    paths = Paths(root, models=tmp_path / "models", plots=tmp_path / "plots")
    model = finetune(params, paths)
    assert sorted(p.name for p in paths.finetuned.iterdir()) == ["finetuned.json", "finetuned.keras"]
    loaded = keras.saving.load_model(paths.model("finetuned"), safe_mode=True, compile=False)
    with dataset.ImageStore(root / "data/prepared/images.npy") as store:
        images = store.read(np.arange(8)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)
    # Same params and data: the same model as the fixture's run (the seed fixes shuffling and augmentation).
    with open(paths.history("finetuned")) as a, open(root / "plots/finetuned/history.csv") as b:
        assert list(csv.reader(a)) == list(csv.reader(b))


def test_off_it_writes_only_a_record_and_the_other_stages_leave_it_out(trained, tmp_path):
    from fashion.evaluation.evaluate import evaluate
    from fashion.models.finetune import finetune

    params, root = trained
    off = override(params, {"finetune.enabled": False})
    models = tmp_path / "models"
    models.mkdir()
    for name in ("cnn.keras", "cnn.json", "head.keras", "head.json"):
        shutil.copy(root / "models" / name, models / name)
    (models / "finetuned").mkdir()
    (models / "finetuned/finetuned.keras").write_text("an earlier run's model")  # must not survive

    paths = Paths(root, models=models, plots=tmp_path / "plots", metrics=tmp_path / "metrics")
    assert finetune(off, paths) is None

    assert [p.name for p in (models / "finetuned").iterdir()] == ["finetuned.json"]
    assert json.loads((models / "finetuned/finetuned.json").read_text())["enabled"] is False
    assert (tmp_path / "plots/finetuned/history.csv").read_text().splitlines() == [
        "epoch,loss,accuracy,val_loss,val_accuracy"]
    for kind in ("cnn", "head"):
        (tmp_path / "plots" / kind).mkdir(parents=True)
        shutil.copy(root / "plots" / kind / "history.csv", tmp_path / "plots" / kind / "history.csv")
    results = evaluate(params, paths)
    assert list(results) == ["cnn", "head", "baseline"]
    assert json.loads((tmp_path / "metrics/finetuned.json").read_text()) == {}
    assert (tmp_path / "plots/finetuned/predictions.csv").read_text().count("\n") == 1
    assert (tmp_path / "plots/finetuned/confusion.png").stat().st_size > 1000

    with pytest.raises(PipelineError, match=r"fine-tuning is off \(finetune.enabled: false\)"):
        load_classifier("finetuned", models)


def test_the_prediction_command_says_when_fine_tuning_is_off(trained, tmp_path):
    import subprocess
    import sys

    from tests.helpers import REPO

    _, root = trained
    models = tmp_path / "models" / "finetuned"
    models.mkdir(parents=True)
    (models / "finetuned.json").write_text(json.dumps({"kind": "finetuned", "enabled": False}))
    photo = next((root / "photos").rglob("*.jpg"))
    result = subprocess.run([sys.executable, "-m", "stages.predict", str(photo), "--model", "finetuned",
                             "--models-dir", str(tmp_path / "models")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert "fine-tuning is off (finetune.enabled: false)" in result.stderr
    assert "Traceback" not in result.stderr


def test_random_backbone_weights_warn_that_this_is_training_from_scratch(trained, tmp_path, caplog):
    from fashion.models.finetune import finetune

    params, root = trained
    for name in ("head.keras", "head.json"):
        shutil.copy(root / "models" / name, tmp_path / name)
    info = json.loads((tmp_path / "head.json").read_text())
    info["backbone"]["weights"] = "none"
    (tmp_path / "head.json").write_text(json.dumps(info))
    paths = Paths(root, models=tmp_path, plots=tmp_path / "plots")
    one_epoch = override(params, {"finetune.epochs": 1, "finetune.warmup_epochs": 0})
    with caplog.at_level("WARNING", logger="fashion"):
        finetune(one_epoch, paths)
    assert "RANDOM weights" in caplog.text and "training the backbone from scratch" in caplog.text


def test_bad_values_are_clear_errors_with_the_valid_range():
    with pytest.raises(PipelineError, match=r"'finetune.unfreeze' is 14, but mobilenet has 13 blocks; use 0 .* 13"):
        make_params(**{"finetune.enabled": True, "finetune.unfreeze": 14})
    with pytest.raises(PipelineError, match=r"'finetune.unfreeze' is -1; it must be between 0 and 18"):
        make_params(**{"finetune.unfreeze": -1})
    with pytest.raises(PipelineError, match=r"'finetune.learning_rate' is -0.001; it must be between 0 and 1"):
        make_params(**{"finetune.learning_rate": -0.001})
    with pytest.raises(PipelineError, match=r"fine-tuning trains one"):
        make_params(**{"finetune.enabled": True, "model": "mobilenet+mobilenet_v2",
                       "features.weights": {"mobilenet": "none", "mobilenet_v2": "none"}})
    with pytest.raises(PipelineError, match=r"'finetune.warmup_epochs' \(3\) must be less than 'finetune.epochs'"):
        make_params(**{"finetune.enabled": True, "finetune.warmup_epochs": 3, "finetune.epochs": 3})
    # Off, the fine-tuning settings need not fit the backbone: vgg16 has 5 blocks.
    assert make_params(**{"model": "vgg16", "finetune.unfreeze": 8}).finetune.unfreeze == 8


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_every_backbone_has_the_blocks_params_count_and_unfreeze_opens_the_top_ones(name):
    import keras

    from fashion.features.backbones import application
    from fashion.models.finetune_model import backbone_blocks, set_trainable

    constructor, _, takes_alpha = application(name)
    backbone = constructor(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg",
                           **({"alpha": 0.25} if takes_alpha else {}))
    blocks = backbone_blocks(backbone, name)
    assert len(blocks) == BLOCKS[name]
    assert all(any(layer.weights for layer in block) for block in blocks)
    assert set_trainable(backbone, name, 0) == 0
    top = set_trainable(backbone, name, 1)
    assert top > 0
    trainable = {layer.name for layer in backbone.layers if layer.trainable and layer.weights}
    assert trainable == {layer.name for layer in blocks[-1]
                         if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)}
    with pytest.raises(PipelineError, match=f"{name} has {BLOCKS[name]} blocks"):
        set_trainable(backbone, name, BLOCKS[name] + 1)
