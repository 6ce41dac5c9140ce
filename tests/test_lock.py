"""The committed dvc.lock is the default run of the code and params as they are.

`dvc metrics diff` and `dvc exp show` compare an experiment with the committed lock and metrics: a lock
from older code or params would make every column differ. This test runs `dvc status` in a fresh copy of
the repository's files (what a clone has: no outputs, no cache), so it needs no run and does not depend
on the CPU: only dependencies that are files in the repository (code, weights) and params are compared
with the lock. Outputs, and dependencies that are outputs of earlier stages, are absent in a clone and
do not count.
"""

import json
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import REPO
from tests.repo_copy import dvc, git

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

REFRESH = "benchmarks/refresh_lock.sh (the default `dvc repro`, then `git add dvc.lock metrics plots`), and commit"


def repository_files():
    """The files a clone of the working tree has: tracked ones and untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    return [name for name in listed if name and (REPO / name).is_file()]


def fresh_clone(root):
    for name in repository_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "clone")
    return root


def stale_entries(status, outputs):
    """The stage problems `dvc status --json` reports that a refreshed lock would not have: changed or new
    params, changed code or other dependency files of the repository, a changed command, a stage not in the
    lock. A dependency that is another stage's output is absent in a clone ('deleted'): not a problem."""
    problems = []
    for stage, entries in status.items():
        for entry in entries:
            if entry == "always changed":  # scan (always_changed: true) reads the photo folder on every run
                continue
            if isinstance(entry, str):  # "changed command", ...
                problems.append(f"{stage}: {entry}")
                continue
            for path, change in entry.get("changed deps", {}).items():
                if isinstance(change, dict):  # params: {key: modified | new | deleted}
                    problems += [f"{stage}: param {key} {what}" for key, what in change.items()]
                elif not any(path == out or path.startswith(f"{out}/") for out in outputs):
                    problems.append(f"{stage}: {path} {change}")
    return problems


def declared_outputs():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = set()
    for stage in stages.values():
        for out in stage.get("outs", []) + stage.get("metrics", []):
            outs.add(next(iter(out)) if isinstance(out, dict) else out)
    return outs


def test_the_committed_lock_is_the_default_run_of_this_code_and_these_params(tmp_path):
    assert (REPO / "dvc.lock").is_file(), f"dvc.lock is not committed; create it with {REFRESH}"
    clone = fresh_clone(tmp_path / "clone")
    status = json.loads(dvc(clone, "status", "--json"))
    problems = stale_entries(status, declared_outputs())
    assert not problems, ("dvc.lock is out of date with the code or params.yaml:\n  " + "\n  ".join(problems)
                          + f"\nRefresh it: {REFRESH}")


def test_the_committed_metrics_are_the_locked_ones():
    """The small outputs kept in git (metrics/, plots/*/*.csv) are the files whose hashes dvc.lock holds, so
    `dvc metrics diff` in a clone compares an experiment with the numbers of the locked run."""
    import hashlib

    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    tracked = set(repository_files())
    checked = 0
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] in tracked:
                assert hashlib.md5((REPO / out["path"]).read_bytes()).hexdigest() == out["md5"], \
                    f"{out['path']} is not the file dvc.lock records; refresh both with {REFRESH}"
                checked += 1
    assert checked >= 10  # metrics/*.json, report.md, cv_folds.csv, plots/*/history.csv and predictions.csv


def test_a_stale_lock_is_found_and_the_message_says_how_to_refresh(tmp_path):
    """The check itself: a changed module and a changed param in a clone of the committed run are reported."""
    clone = fresh_clone(tmp_path / "clone")
    (clone / "fashion/models/baseline.py").write_text((clone / "fashion/models/baseline.py").read_text() + "\n# changed\n")
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["head"]["dropout"] = 0.25
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    problems = stale_entries(json.loads(dvc(clone, "status", "--json")), declared_outputs())
    # crossval lists the head's keys one by one, train_head the whole section
    assert "crossval: param head.dropout modified" in problems and "train_head: param head modified" in problems
    assert "crossval: fashion/models/baseline.py modified" in problems and "evaluate: fashion/models/baseline.py modified" in problems
    assert not any(problem.startswith(("prepare", "extract", "train_cnn")) for problem in problems)
