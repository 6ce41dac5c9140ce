"""Shared test helpers: the repository root, params built from params.yaml, and ../shared data."""

import copy
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from stages.params import validate  # noqa: E402


def make_params(**overrides):
    """The repository's params.yaml, validated, with dotted-key overrides: make_params(**{"data.image_size": 32})."""
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    for dotted, value in overrides.items():
        section = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            section = section[key]
        section[leaf] = value
    return validate(params)


def shared_path(relative):
    """A function returning ../shared/<relative>; in CI a missing file fails the test, elsewhere it skips it."""
    def locate():
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
    from stages.prepare import prepare

    photos = copy_photos(tmp_path / "photos", per_class)
    params = make_params(**{"data.source": "folder", "data.path": str(photos), "data.image_size": size,
                            **overrides})
    prepare(params, tmp_path / "prepared")
    return params, tmp_path / "prepared"
