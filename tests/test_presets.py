"""Params presets (presets/*.yaml, fashion/presets.py): valid params, and the -S options DVC takes."""

import subprocess
import sys

import pytest
import yaml

from fashion.errors import PipelineError
from fashion.presets import PRESETS_DIR, dvc_options, preset
from tests.helpers import REPO, make_params


@pytest.mark.parametrize("name", sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
def test_every_preset_is_valid_params(name):
    overrides = preset(name)
    assert overrides
    params = make_params(**overrides)
    for dotted, value in overrides.items():
        section = params
        for key in dotted.split("."):
            section = getattr(section, key)
        assert section == value, dotted


def test_the_original_cnn_preset_is_the_original_network():
    overrides = preset("cnn_original")
    assert overrides["cnn.filters"] == [32, 64, 128, 256] and overrides["cnn.dense_units"] == [512, 256]
    assert overrides["cnn.region.bottom"] == 1.0 and overrides["cnn.augment.flip"] is True


def test_the_command_prints_options_dvc_exp_run_takes():
    result = subprocess.run([sys.executable, "-m", "fashion.presets", "cnn_original"], cwd=REPO,
                            capture_output=True, text=True, check=True)
    options = result.stdout.split()
    assert "-S" in options and "cnn.filters=[32,64,128,256]" in options and "cnn.augment.flip=true" in options
    # DVC parses each value as YAML: the printed values read back as the preset's own.
    pairs = [option.split("=", 1) for option in options if option != "-S"]
    assert {key: yaml.safe_load(value) for key, value in pairs} == preset("cnn_original")
    assert dvc_options({"a.b": 0.5}) == ["-S a.b=0.5"]


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(PipelineError, match="no preset 'cnn_orignal'.*known presets: cnn_original"):
        preset("cnn_orignal")
