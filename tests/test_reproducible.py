"""The reproducibility check CI runs: the whole pipeline on a tiny configuration of the embedded default,
with the real MobileNet 0.25 weights, twice from scratch in two separate copies; then `dvc status`,
`dvc exp run -S model=...` and a teammate's `dvc pull` from a local remote."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import MOBILENET_025, REPO, shared_path
from tests.repo_copy import copy_repo, dvc, git

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

MOBILENET_V2 = shared_path("weights/mobilenet_v2_1.0_224_no_top.weights.h5")
SMALL = {
    "synthetic.image_size": 96,
    "synthetic.counts": {"round_neck": 14, "v_neck": 10, "scoop_neck": 8},
    "data.image_size": 64,
    "features.alpha": 0.25,
    "head.epochs": 20,
    "head.patience": 5,
    "cnn.image_size": 32,
    "cnn.filters": [8, 16],
    "cnn.dense_units": [16],
    "cnn.epochs": 3,
    "finetune.enabled": True,
    "finetune.epochs": 2,
    "finetune.batch_size": 8,
    "crossval.folds": 3,
    "crossval.repeats": 1,  # with fine-tuning on, each fold fine-tunes too
    "crossval.validation": 0.25,
}
# Everything a run reports: must be byte-identical between two runs from scratch.
REPORTED = ["metrics/test.json", "metrics/cnn.json", "metrics/head.json", "metrics/finetuned.json",
            "metrics/baseline.json", "metrics/smote.json", "metrics/cnn_train.json", "metrics/report.md",
            "metrics/cv.json", "metrics/cv_folds.csv", "metrics/cv_predictions.csv", "metrics/cv_oof.csv",
            "metrics/suspects.csv",
            "metrics/per_class.json",
            "plots/cnn/history.csv", "plots/head/history.csv", "plots/finetuned/history.csv",
            "plots/cnn/predictions.csv", "plots/head/predictions.csv", "plots/finetuned/predictions.csv",
            "data/prepared/manifest.csv", "data/prepared/images.npy"]
UP_TO_DATE = "Data and pipelines are up to date."


def up_to_date(status):
    """`dvc status` with nothing to do but scan, which reads the photo folder on every run (always_changed)."""
    lines = [line.strip() for line in status.splitlines() if line.strip()]
    return lines in ([UP_TO_DATE], ["scan:", "always changed"])


def stages_run(out):
    """The stages a `dvc repro` or `dvc exp run` ran, but scan, which runs every time."""
    return set(re.findall(r"Running stage '(\w+)'", out)) - {"scan"}


def small_params():
    return {**SMALL, "features.weights": str(MOBILENET_025())}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = copy_repo(tmp_path_factory.mktemp("first"), small_params())
    dvc(root, "repro")
    return root


def test_two_runs_from_scratch_report_exactly_the_same(first, tmp_path_factory):
    second = copy_repo(tmp_path_factory.mktemp("second"), small_params())
    dvc(second, "repro")

    for name in REPORTED:
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"{name} differs between the runs"
    # every output DVC tracks, by its hash: models, features, caches of every stage
    assert (first / "dvc.lock").read_bytes() == (second / "dvc.lock").read_bytes()
    for model in ("models/head.keras", "models/cnn.keras", "models/finetuned/finetuned.keras"):
        assert (first / model).read_bytes() == (second / model).read_bytes(), f"{model} differs between the runs"
    for split in ("train", "validation", "test"):
        with np.load(first / f"data/features/{split}.npz") as a, np.load(second / f"data/features/{split}.npz") as b:
            for key in ("features", "labels", "rows"):
                np.testing.assert_array_equal(a[key], b[key])
    metrics = json.loads((first / "metrics/test.json").read_text())
    info = json.loads((first / "models/head.json").read_text())
    assert info["backbone"]["weights"].endswith("mobilenet_0.25_224_no_top.h5")  # real weights, not random
    assert set(metrics) == {"cnn", "head", "finetuned", "baseline"}
    for model in metrics.values():  # every headline number with its interval
        for name in ("accuracy", "balanced_accuracy", "macro_f1"):
            low, high = model[f"{name}_ci"]
            assert low <= model[name] <= high
    cv = json.loads((first / "metrics/cv.json").read_text())
    assert set(cv["head"]) == {f"{m}_{s}" for m in ("accuracy", "balanced_accuracy", "macro_f1") for s in ("mean", "sd")}


def test_status_is_clean_after_the_run(first):
    assert up_to_date(dvc(first, "status"))
    assert "Stage 'evaluate' didn't change, skipping" in dvc(first, "repro")


def test_a_forced_rerun_leaves_git_and_dvc_clean(first, tmp_path_factory):
    """Same params, same data, same machine: running every stage again changes no byte that git or DVC sees."""
    rerun = tmp_path_factory.mktemp("rerun")
    subprocess.run(["cp", "-a", f"{first}/.", str(rerun)], check=True)
    git(rerun, "add", "-A")
    git(rerun, "commit", "-qm", "the first run")
    dvc(rerun, "repro", "-f")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=rerun, capture_output=True, text=True).stdout
    assert status == "", status
    assert up_to_date(dvc(rerun, "status"))


# The command docs/evaluation.md gives for a narrow `dvc exp show`: no dependency hashes, balanced accuracies only.
NARROW = "[^:]*/[^:]*$|.*:(acc|f1|bal_lo|bal_hi|cv_sd)$"


def test_a_one_param_experiment_fits_a_narrow_table(first):
    import os

    git(first, "add", "-A")
    git(first, "commit", "-qm", "the first run")
    dvc(first, "exp", "run", "-S", "head.units=64")
    env = {**os.environ, "COLUMNS": "1000"}
    table = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--only-changed", "--no-pager", "--drop",
                            NARROW], cwd=first, env=env, capture_output=True, text=True, check=True).stdout
    assert "head.units" in table and "metrics/head.json:bal_acc" in table, table
    assert max(len(line) for line in table.splitlines()) <= 200, table
    assert NARROW in (REPO / "docs/evaluation.md").read_text()
    git(first, "checkout", "--", ".")  # params, lock and metrics of the first run again
    dvc(first, "checkout")  # and its outputs, for the tests below


def test_exp_run_with_another_backbone_re_runs_only_what_depends_on_it(first):
    git(first, "add", "-A")
    git(first, "commit", "--allow-empty", "-qm", "mobilenet 0.25 run")  # committed already when run after the above
    before = json.loads((first / "metrics/test.json").read_text())

    out = dvc(first, "exp", "run", "-S", "model=mobilenet_v2", "-S", f"features.weights={MOBILENET_V2()}",
              "-S", "features.alpha=1.0")

    ran = {stage for stage in ("synthesize", "prepare", "extract", "crossval", "suspects", "resample", "train_head",
                               "finetune", "train_cnn", "evaluate") if f"Running stage '{stage}'" in out}
    assert ran == {"extract", "crossval", "suspects", "resample", "train_head", "finetune", "evaluate"}
    after = json.loads((first / "metrics/test.json").read_text())
    # The CNN never sees the backbone: its scores and threshold stay. Its unfamiliar check (the decision's share of
    # unfamiliar test photos) is measured in the backbone's feature space, so that part may move.
    def scores(model):
        return {key: value for key, value in model.items() if key != "decision"}

    assert scores(after["cnn"]) == scores(before["cnn"]) and after["head"] != before["head"]
    assert after["cnn"]["decision"]["threshold"] == before["cnn"]["decision"]["threshold"]
    assert json.loads((first / "data/features/info.json").read_text())["feature_dim"] == 1280
    assert up_to_date(dvc(first, "status"))
    assert "mobilenet_v2" in dvc(first, "exp", "show", "--json")


def test_a_teammate_pulls_models_and_features_from_a_remote_instead_of_re_running(first, tmp_path):
    remote = tmp_path / "remote"
    dvc(first, "remote", "add", "-d", "team", str(remote))
    dvc(first, "push")
    git(first, "add", "-A")
    git(first, "commit", "-qm", "results and the team remote")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(first), str(clone)], check=True, capture_output=True)
    assert not (clone / "models/head.keras").exists()
    dvc(clone, "pull")

    assert (clone / "models/head.keras").read_bytes() == (first / "models/head.keras").read_bytes()
    assert up_to_date(dvc(clone, "status"))
    out = dvc(clone, "repro")
    assert not stages_run(out), out  # nothing to recompute but the scan: everything came from the remote
