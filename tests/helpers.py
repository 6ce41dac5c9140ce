"""Test helpers: the repository root, params built from params.yaml, ../shared data, a whole pipeline run."""

import copy
import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
from fashion.params import Params, validate
from fashion.paths import Paths


def make_params(**overrides):
    """The repository's params.yaml, validated, with dotted-key overrides: make_params(**{"data.image_size": 32}).

    data.exclude and data.confirmed are none unless given: the repository's files are relative to where a test runs."""
    return validate(override(yaml.safe_load((REPO / "params.yaml").read_text()),
                             {"data.exclude": None, "data.confirmed": None, **overrides}))


def override(params, overrides):
    """A copy of params with {"section.key": value} overrides applied: of a plain dict, a dict; of validated
    Params, new Params (its values dumped, overridden and validated again)."""
    if isinstance(params, Params):
        return validate(override(params.model_dump(), overrides))
    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        section = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            section = section[key]
        section[leaf] = value
    return params


# The test running now (conftest.py sets it): what shared_path and tests.servers.browser check its markers against.
RUNNING = {"item": None}


def require_marker(name, what):
    """Fail the running test unless it carries the marker `name` (pytest.ini), so that `-m "not NAME"` leaves out
    every test that does `what`. With TESTS_MARKER_AUDIT=FILE, append its id to FILE instead (to find them)."""
    item = RUNNING["item"]
    if item is None or item.get_closest_marker(name) is not None:
        return
    audit = os.environ.get("TESTS_MARKER_AUDIT")
    if audit:
        with open(audit, "a") as handle:
            handle.write(f"{name} {item.nodeid}\n")
        return
    pytest.fail(f"{item.nodeid} {what} but is not marked {name}: add @pytest.mark.{name} (see pytest.ini)")


def shared_path(relative):
    """A function returning ../shared/<relative>; in CI a missing file fails the test, elsewhere it skips it.
    Only a test marked shared_data may call it."""
    def locate():
        require_marker("shared_data", "reads ../shared")
        path = SHARED / relative
        if not path.exists():
            message = f"{path} is missing: the tests need the shared data beside the repository"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        return path
    return locate


NECKLINES = shared_path("data/necklines")
MOBILENET_025 = shared_path("weights/mobilenet_0.25_224_no_top.h5")
MOBILENET_V1 = shared_path("weights/mobilenet_1.0_224_no_top.weights.h5")
MOBILENET_V2 = shared_path("weights/mobilenet_v2_1.0_224_no_top.weights.h5")


def copy_photos(target, per_class, classes=("round_neck", "v_neck", "henley")):
    """A small folder of real neckline photos: the first per_class files of each class."""
    source = NECKLINES()
    for name in classes:
        (target / name).mkdir(parents=True)
        for photo in sorted((source / name).glob("*.jpg"))[:per_class]:
            shutil.copy(photo, target / name / photo.name)
    return target


def prepared_photos(tmp_path, per_class=8, size=64, **overrides):
    """A prepared data set of real photos in tmp_path/prepared; returns (params, prepared_dir)."""
    from fashion.data.preparation import prepare

    photos = copy_photos(tmp_path / "photos", per_class)
    params = make_params(**{"data.source": "folder", "data.path": str(photos), "data.image_size": size,
                            **overrides})
    prepare(params, Paths(tmp_path, prepared=tmp_path / "prepared"))
    return params, tmp_path / "prepared"


# A whole pipeline run, stage functions called in order, on real photos with the real MobileNet 0.25
# weights: what evaluate and predict need. Laid out like the repository (data/, models/, plots/, metrics/).
TINY_RUN = {"data.image_size": 64, "split.validation": 0.2, "split.test": 0.25,
            "features.alpha": 0.25, "head.epochs": 30, "head.patience": 10, "head.units": 32,
            "head.learning_rate": 0.003, "head.input_dropout": 0.2, "head.l2": 0.0,
            "cnn.image_size": 32, "cnn.filters": [8, 16], "cnn.dense_units": [16], "cnn.epochs": 3,
            "cnn.batch_size": 8, "evaluate.mistakes": 4,
            "finetune.enabled": True, "finetune.epochs": 2, "finetune.warmup_epochs": 1, "finetune.batch_size": 8,
            "finetune.patience": 2}



def run_pipeline(params, root):
    """(params, root): prepare, extract, resample, train_head, finetune, train_cnn and evaluate, called in
    order on params, with their outputs laid out under root like the repository's."""
    from fashion.data.preparation import prepare
    from fashion.evaluation.evaluate import evaluate
    from fashion.features.extraction import extract
    from fashion.features.smote import resample
    from fashion.models.cnn import train_cnn
    from fashion.models.finetune import finetune
    from fashion.models.head import train_head

    paths = Paths(root)
    for stage in (prepare, extract, resample, train_head, finetune, train_cnn, evaluate):
        stage(params, paths)
    return params, root


# The trained models see only part of each photo, so prediction has to cut out the same part
# for its probabilities to equal the evaluate stage's (tests/test_predict.py).
TRAINED_REGION = {"data.region.top": 0.05, "data.region.bottom": 0.7, "data.region.left": 0.1,
                  "data.region.right": 0.95}
