"""params.yaml validation: every mistake names the key and what is allowed."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from fashion.errors import PipelineError
from fashion.params import load_params, validate
from tests.helpers import REPO, SHARED, make_params, override, shared_path


def test_the_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.data.source == "synthetic" and params.model == "mobilenet"
    assert (REPO / params.data.exclude).is_file()  # a dep of prepare in dvc.yaml: it must exist


@pytest.mark.parametrize("value", [None, ""])
def test_no_exclude_file_is_null_or_empty(value):
    assert make_params(**{"data.exclude": value}).data.exclude is None


@pytest.mark.parametrize("overrides, message", [
    ({"data.source": "s3"}, "'data.source' is 's3'; allowed values: synthetic, folder, fashion_mnist"),
    ({"model": "vgg19"}, "'model' is 'vgg19'; allowed values: mobilenet, mobilenet_v2, vgg16, resnet50"),
    ({"model": "mobilenet+vgg19"}, "'model' is 'mobilenet+vgg19'; allowed values: mobilenet, mobilenet_v2, vgg16, "
                                   "resnet50, or several of them joined by '+'"),
    ({"model": "mobilenet+mobilenet"}, "or several of them joined by '+'"),
    ({"model": "mobilenet+mobilenet_v2", "features.weights": {"mobilenet": "none"}},
     "'features.weights' has no entry for mobilenet_v2"),
    ({"features.weights": {"vgg19": "none"}}, "'features.weights.vgg19' names no backbone"),
    ({"features.weights": {}}, "'features.weights' is an empty mapping"),
    ({"split.test": -0.1}, "'split.test' is -0.1; it must be between 0 and 1"),
    ({"data.min_side": 0}, "'data.min_side' is 0; it must be between 1 and 65535"),
    ({"data.max_aspect": 0.5}, "'data.max_aspect' is 0.5; it must be between 1 and 65535"),
    ({"data.region.bottom": 1.5}, "'data.region.bottom' is 1.5; it must be between 0 and 1"),
    ({"data.region.bottom": 0.0}, "'data.region.bottom' (0) must be greater than 'data.region.top' (0)"),
    ({"data.region.left": 0.7, "data.region.right": 0.3},
     "'data.region.right' (0.3) must be greater than 'data.region.left' (0.7); they are fractions of "
     "the photo's width"),
    ({"data.region": {"top": 0, "bottom": 0.6}}, "'data.region.left' is missing"),
    ({"data.region": 0.6}, "'data.region' must be a mapping"),
    ({"split.validation": 0.6, "split.test": 0.5}, "must add up to less than 1"),
    ({"split.group": "-(\\d+"}, "'split.group' is not a valid regular expression"),
    ({"split.group": "-\\d+\\.jpg$"}, "'split.group' has no group in"),
    ({"split.group": 5}, "'split.group' must be a non-empty string"),
    ({"evaluate.bootstrap": -1}, "'evaluate.bootstrap' is -1"),
    ({"crossval.folds": 1}, "'crossval.folds' is 1; it must be between 2 and 50"),
    ({"data.image_size": "big"}, "'data.image_size' must be a whole number, got 'big'"),
    ({"data.image_size": True}, "'data.image_size' must be a whole number"),
    ({"smote.enabled": "yes"}, "'smote.enabled' must be true or false"),
    ({"data.exclude": 3}, "'data.exclude' must be a non-empty string, got 3"),
    ({"data.exclude_test": "no"}, "'data.exclude_test' must be true or false"),
    ({"cnn.filters": []}, "'cnn.filters' must be a list of whole numbers"),
    ({"cnn.dense_units": [64, 0]}, "'cnn.dense_units[1]' is 0; it must be between 1 and 65536"),
    ({"cnn.dense_units": 64}, "'cnn.dense_units' must be a list of whole numbers, e.g. [32, 64] (or [] for none)"),
    ({"cnn.region.right": 1.2}, "'cnn.region.right' is 1.2; it must be between 0 and 1"),
    ({"cnn.region.top": 0.6, "cnn.region.bottom": 0.6},
     "'cnn.region.bottom' (0.6) must be greater than 'cnn.region.top' (0.6); they are fractions of the "
     "prepared image's height"),
    ({"cnn.region": {"top": 0, "bottom": 0.6}}, "'cnn.region.left' is missing"),
    ({"cnn.standardize": "yes"}, "'cnn.standardize' must be true or false"),
    ({"cnn.augment.channel_shuffle": 1}, "'cnn.augment.channel_shuffle' must be true or false"),
    ({"cnn.augment.invert": 1.5}, "'cnn.augment.invert' is 1.5; it must be between 0 and 1"),
    ({"features.precision": "float16"}, "allowed values: float32, bfloat16"),
    ({"features.engine": "spark"}, "'features.engine' is 'spark'; allowed values: local, ray"),
    ({"features.ray.address": 6379}, "'features.ray.address' is 6379; allowed values: '' (start a Ray cluster"),
    ({"features.ray.address": "ray://head"}, "or host:port of a cluster's head node, e.g. 10.0.0.5:6379"),
    ({"features.ray.workers": 0}, "'features.ray.workers' is 0; it must be between 1 and 4096"),
    ({"features.ray.workers": 1.5}, "'features.ray.workers' must be a whole number, got 1.5"),
    ({"features.ray.num_gpus": -1}, "'features.ray.num_gpus' is -1; it must be between 0 and 64"),
    ({"features.ray.num_gpus": "one"}, "'features.ray.num_gpus' must be a number, got 'one'"),
    ({"data.source": "synthetic", "data.path": "/photos"}, "data.source=folder"),
    ({"model": []}, "'model' is []; allowed values: mobilenet, mobilenet_v2, vgg16, resnet50"),
    ({"features.alpha": 0.3}, "'features.alpha' is 0.3; allowed values: 0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4"),
    ({"cnn.filters": [16, True]}, "'cnn.filters[1]' must be a whole number, got True"),
    ({"data.cache_max_gb": 0}, "'data.cache_max_gb' is 0; it must be between 0 and 100000 (exclusive)"),
    ({"head.dropout": float("inf")}, "'head.dropout' must be a number, got inf"),
    ({"synthetic.counts": {"round_neck": 0}}, "'synthetic.counts.round_neck' is 0; it must be between 1 and 100000"),
    ({"synthetic.counts": {}}, "'synthetic.counts' must be a mapping of class name to image count, got {}"),
    ({"data.locate_box.top": 0.2, "data.locate_box.bottom": 0.9}, "'data.locate_box.bottom' is 0.9, so the box ends"),
    ({"cnn.reduce_lr_patience": 3}, "'cnn.reduce_lr_patience' is 3 but 'cnn.schedule' is cosine"),
    ({"cnn.image_size": 16, "cnn.filters": [8] * 5}, "'cnn.image_size' 16 is too small for 5 convolution blocks"),
    ({"finetune.enabled": True, "model": "mobilenet+vgg16"}, "fine-tuning trains one"),
    ({"finetune.enabled": True, "model": "vgg16", "finetune.unfreeze": 6}, "'finetune.unfreeze' is 6, but vgg16 has 5"),
    ({"finetune.enabled": True, "finetune.warmup_epochs": 8}, "'finetune.warmup_epochs' (8) must be less than"),
])
def test_wrong_values_name_the_key_and_the_allowed_values(overrides, message):
    with pytest.raises(PipelineError) as err:
        make_params(**overrides)
    assert message in str(err.value)


def test_the_ray_engine_takes_no_address_auto_or_host_and_port():
    for address in ("", None, "auto", "10.0.0.5:6379", "head-node.cluster.local:6379", "[::1]:6379"):
        assert make_params(**{"features.ray.address": address}).features.ray.address == (address or "")


def test_a_typo_names_the_key_and_suggests_the_right_one():
    with pytest.raises(PipelineError, match=r"unknown key 'data.sorce' \(did you mean 'data.source'\?\)"):
        make_params(**{"data.sorce": "folder"})


def test_a_misspelt_nested_key_is_one_line_that_suggests_the_right_one():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["region"]["lef"] = params["data"]["region"].pop("left")
    with pytest.raises(PipelineError) as err:
        validate(params)
    assert str(err.value) == ("params.yaml: unknown key 'data.region.lef' (did you mean 'data.region.left'?); allowed "
                              "keys here: data.region.top, data.region.bottom, data.region.left, data.region.right")


def test_every_problem_gets_a_line_of_its_own():
    with pytest.raises(PipelineError) as err:
        make_params(**{"head.epochs": 0, "cnn.augment.flipp": True, "split.group": 5})
    assert str(err.value).splitlines() == [
        "params.yaml: unknown key 'cnn.augment.flipp' (did you mean 'cnn.augment.flip'?); allowed keys here: "
        "cnn.augment.flip, cnn.augment.rotation, cnn.augment.zoom, cnn.augment.shift, cnn.augment.brightness, "
        "cnn.augment.contrast, cnn.augment.hue, cnn.augment.grayscale, cnn.augment.channel_shuffle, cnn.augment.invert",
        "params.yaml: 'split.group' must be a non-empty string, got 5",
        "params.yaml: 'head.epochs' is 0; it must be between 1 and 10000"]


def test_the_file_must_be_a_mapping():
    with pytest.raises(PipelineError, match="^params.yaml: the file must be a mapping of keys to values, got None$"):
        validate(None)


def test_params_read_as_attributes_and_dump_to_the_plain_dicts_of_the_file():
    params = make_params()
    assert params.cnn.batch_size == 32 and params.data.region.bottom == 1.0
    plain = params.model_dump()
    assert type(plain["data"]["region"]) is dict and validate(plain) == params
    assert type(plain["cnn"]["dropout"]) is float and type(plain["cnn"]["epochs"]) is int  # dropout: 0.0 stays 0.0
    assert set(plain["cnn"]) == set(yaml.safe_load((REPO / "params.yaml").read_text())["cnn"])  # every key
    assert json.loads(json.dumps(plain)) == plain and yaml.safe_load(yaml.safe_dump(plain)) == plain
    assert not hasattr(params.finetune.augment, "hue") and params.cnn.augment.hue == 0.0
    with pytest.raises(TypeError):
        params["cnn"]  # sections are models, not dicts: no reads by key
    changed = override(params, {"cnn.epochs": 1})  # tests build new params instead of writing into them
    assert changed.cnn.epochs == 1 and params.cnn.epochs == 40 and type(changed) is type(params)


def test_a_section_given_as_a_model_is_checked_again():
    params = make_params()
    augment = params.finetune.augment.model_copy(update={"flip": "yes"})  # model_copy does not validate
    with pytest.raises(PipelineError, match="'finetune.augment.flip' must be true or false"):
        validate({**dict(params), "finetune": {**dict(params.finetune), "enabled": True, "augment": augment}})


def test_a_missing_key_is_named(tmp_path):
    text = (REPO / "params.yaml").read_text().replace("  max_pixels: 50000000", "")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(PipelineError, match="'data.max_pixels' is missing"):
        load_params(tmp_path / "params.yaml")


def test_broken_yaml_is_a_clear_error_from_the_command_line(tmp_path):
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    result = subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert result.returncode == 2
    assert result.stderr.startswith("error: params.yaml is not valid YAML") and "Traceback" not in result.stderr


def real_data_overrides(name):
    """The -S overrides benchmarks/real_data.sh passes for one configuration, as {key: value}."""
    command = subprocess.run(["bash", "benchmarks/real_data.sh", "--dry-run", name], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.split()
    overrides = {}
    for flag, assignment in zip(command, command[1:]):
        if flag == "-S":
            key, value = assignment.split("=", 1)
            if value.startswith("{"):  # DVC's dict syntax: {a:b,c:d}
                value = dict(item.split(":", 1) for item in value.strip("{}").split(","))
            else:
                value = yaml.safe_load(value)
            overrides[key] = value
    return overrides


@pytest.mark.shared_data
def test_every_real_data_configuration_is_valid_and_its_files_exist():
    names = subprocess.run(["bash", "benchmarks/real_data.sh", "--list"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    # the data-backbone-smote grid (7 x 3 x 2) and necklines_best
    assert len(names) == 43 and {"necklines_top-ensemble-smote", "necklines_face-ensemble-smote",
                                 "fashion224-mobilenet-smote", "necklines_best"} <= set(names)
    for name in names:
        overrides = real_data_overrides(name)
        # every configuration sets every key it depends on: the workspace holds the last experiment's
        assert {"data.source", "data.path", "data.region.bottom", "data.resize", "data.locate", "model",
                "features.weights", "features.mirror", "smote.enabled"} <= set(overrides), name
        params = make_params(**overrides)
        weights = params.features.weights
        for path in [params.data.path, *(weights.values() if isinstance(weights, dict) else [weights])]:
            assert shared_path(os.path.relpath(REPO / path, SHARED))().exists(), (name, path)
    top = make_params(**real_data_overrides("necklines_top-mobilenet-smote")).data
    assert top.region.bottom == 0.6 and top.resize == "crop"
    assert make_params(**real_data_overrides("necklines_top-mobilenet-smote")).features.mirror is True
    assert make_params(**real_data_overrides("necklines-mobilenet-smote")).features.mirror is False
    assert make_params(**real_data_overrides("necklines_top_nomirror-mobilenet-smote")).features.mirror is False
    face = make_params(**real_data_overrides("necklines_face-ensemble-smote"))
    assert face.data.locate == "face" and face.data.region.bottom == 0.6
    whole = {"top": 0.0, "bottom": 1.0, "left": 0.0, "right": 1.0}
    assert face.cnn.region.model_dump() == whole  # all of the located box
    assert make_params(**real_data_overrides("necklines_top-mobilenet-smote")).data.locate == "none"
    best = make_params(**real_data_overrides("necklines_best"))  # docs/locate.md: chosen by grouped CV
    assert best.data.locate == "auto" and best.data.locate_box.model_dump() == face.data.locate_box.model_dump()
    assert best.model == "mobilenet" and best.features.alpha == 1.0 and best.finetune.enabled is True
    assert best.features.weights.endswith("mobilenet_1.0_224_no_top.weights.h5") and best.smote.enabled is True
    assert best.cnn.region.model_dump() == whole and best.data.resize == "crop" and best.data.image_size == 224


def test_the_fashion_mnist_cnn_is_still_f2_and_other_real_data_see_the_whole_image():
    # docs/cnn.md, "Fashion-MNIST": the recipe F2, every key pinned, so new defaults cannot change it
    f2 = {"image_size": 28, "filters": [32, 64, 128], "convolutions": 2, "dense_units": [256], "dropout": 0.4,
          "batch_norm": True, "pooling": "flatten", "region": {"top": 0.0, "bottom": 1.0, "left": 0.0, "right": 1.0},
          "standardize": False, "epochs": 40, "patience": 40, "reduce_lr_patience": 0, "learning_rate": 0.002,
          "schedule": "cosine", "weight_decay": 0.0, "label_smoothing": 0.1, "batch_size": 64, "class_weight": True,
          "calibrate": True,
          "augment": {"flip": True, "rotation": 0.0, "zoom": 0.0, "shift": 0.05, "brightness": 0.0, "contrast": 0.0,
                      "hue": 0.0, "grayscale": 0.0, "channel_shuffle": False, "invert": 0.0}}
    assert make_params(**real_data_overrides("fashion-mobilenet-smote")).cnn.model_dump() == f2
    for name in ("clothing-mobilenet-smote", "fashion224-mobilenet-smote"):
        cnn = make_params(**real_data_overrides(name)).cnn
        assert cnn.region.model_dump() == f2["region"] and cnn.standardize is False, name
        assert cnn.augment.channel_shuffle is False and cnn.augment.invert == 0, name
