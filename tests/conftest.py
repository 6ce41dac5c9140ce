"""Shared test helpers: the repository root, params built from params.yaml, and ../shared data."""

import copy
import os
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
