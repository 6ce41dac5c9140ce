"""Params presets: named sets of params.yaml values kept in presets/<name>.yaml (e.g. cnn_original).

    python -m fashion.presets cnn_original      prints them as DVC's -S options:
    dvc exp run $(python -m fashion.presets cnn_original)

`preset(name)` gives them as {"section.key": value} overrides, leaf by leaf.
"""

import json
import sys
from pathlib import Path

import yaml

from fashion.errors import PipelineError, run_stage

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"


def preset(name):
    """{"cnn.filters": [...], "cnn.augment.flip": True, ...}: every leaf of presets/<name>.yaml."""
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise PipelineError(f"no preset {name!r} (no {path}); known presets: {known}")
    return dict(_leaves(yaml.safe_load(path.read_text()), ""))


def _leaves(section, prefix):
    for key, value in section.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def dvc_options(overrides):
    """The overrides as `-S key=value` arguments, values in compact YAML flow style (no spaces)."""
    return [f"-S {key}={json.dumps(value, separators=(',', ':'))}" for key, value in overrides.items()]


def main():
    if len(sys.argv) != 2:
        raise PipelineError("usage: python -m fashion.presets NAME (e.g. cnn_original)")
    print(" ".join(dvc_options(preset(sys.argv[1]))))


if __name__ == "__main__":
    run_stage(main)
