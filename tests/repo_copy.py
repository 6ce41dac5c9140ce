"""A committed copy of the repository's pipeline in a temporary folder, and real git and dvc run in it."""

import os
import shutil
import subprocess
import sys

import yaml

from tests.helpers import REPO, override

# What a clone needs to run the pipeline: the code, the pipeline, the params, the exclude and labels files,
# the weights file the default backbone loads, DVC's config and page template.
PIPELINE_FILES = ("stages", "fashion", "presets", "dvc.yaml", "params.yaml", "exclude.txt", "confirmed.csv", "weights",
                  ".dvc/config", ".dvc/offline_plots.html", ".dvcignore", ".gitignore")


def copy_repo(root, overrides):
    """Copy the pipeline files to root, apply the dotted params overrides, git init and commit."""
    for name in PIPELINE_FILES:
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    set_params(root / "params.yaml", overrides)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "pipeline")
    return root


def set_params(path, overrides):
    path.write_text(yaml.safe_dump(override(yaml.safe_load(path.read_text()), overrides), sort_keys=False))


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
