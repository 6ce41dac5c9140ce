"""Real `dvc repro` and `dvc exp run` in a temporary copy of the repository, on a tiny configuration."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

TINY = {
    "synthetic.image_size": 64,
    "synthetic.counts": {"round_neck": 8, "v_neck": 6, "scoop_neck": 5},
    "data.image_size": 32,
    "features.weights": "none",
    "features.alpha": 0.25,
    "head.epochs": 3,
    "cnn.epochs": 2,
    "cnn.image_size": 32,
    "cnn.dense_units": [16],
    "cnn.filters": [4, 8],
}


def set_params(path, overrides):
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        section = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            section = section[key]
        section[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A committed copy of the repository's pipeline files, with tiny params."""
    root = tmp_path_factory.mktemp("repo")
    for name in ("stages", "dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore"):
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    set_params(root / "params.yaml", TINY)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "tiny pipeline")
    return root


def git(root, *args):
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
                   cwd=root, check=True, capture_output=True)


def dvc(root, *args):
    """Run dvc with this interpreter's environment, so stage commands find the same packages."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_dvc_repro_prepare_builds_the_default_data_set(repo):
    dvc(repo, "repro", "prepare")

    summary = json.loads((repo / "data/prepared/summary.json").read_text())
    assert summary["source"] == "synthetic"
    assert summary["classes"] == ["round_neck", "scoop_neck", "v_neck"]
    assert {c: n["total"] for c, n in summary["counts"].items()} == {"round_neck": 8, "scoop_neck": 5, "v_neck": 6}
    assert sorted(p.name for p in (repo / "data/synthetic").iterdir()) == ["round_neck", "scoop_neck", "v_neck"]
    assert "up to date" in dvc(repo, "status", "prepare")
    # a second repro has nothing to do
    assert "didn't change, skipping" in dvc(repo, "repro", "prepare")


def test_exp_run_switches_backbone_without_re_preparing_and_restores_from_run_cache(repo):
    first = dvc(repo, "exp", "run", "train_head")
    assert "Running stage 'extract'" in first
    switched = dvc(repo, "exp", "run", "-S", "model=vgg16", "train_head")
    assert "Running stage 'extract'" in switched
    assert "Running stage 'prepare'" not in switched
    assert json.loads((repo / "data/features/info.json").read_text())["feature_dim"] == 512

    back = dvc(repo, "exp", "run", "-S", "model=mobilenet", "train_head")
    assert "Running stage 'extract'" not in back
    assert "Stage 'extract' is cached - skipping run, checking out outputs" in back  # DVC's run cache
    assert json.loads((repo / "data/features/info.json").read_text())["feature_dim"] == 256
