"""Real `dvc repro` and `dvc exp run` in a temporary copy of the repository, on a tiny configuration."""

import json
import re

import pytest

from tests.repo_copy import copy_repo, dvc, git

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

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
    "crossval.folds": 3,
    "crossval.repeats": 1,
    "crossval.validation": 0.25,
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A committed copy of the repository's pipeline files, with tiny params."""
    return copy_repo(tmp_path_factory.mktemp("repo"), TINY)


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


# What TensorFlow writes to stderr on its own: absl's preamble, C++ log lines (I/W/E + date + file.cc:line]),
# the CPU-instructions notice.
TENSORFLOW_NOISE = re.compile(r"absl::InitializeLog|^[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|"
                              r"rebuild TensorFlow with the appropriate compiler flags|node_def_util|cuInit")


DECLARED_PLOTS = ["cnn_confusion", "head_confusion", "cnn_accuracy", "cnn_loss", "head_accuracy", "head_loss",
                  "plots/cnn/confusion.png", "plots/head/confusion.png", "plots/cnn/curves.png",
                  "plots/head/curves.png", "plots/cnn/mistakes.png", "plots/head/mistakes.png",
                  "risk_coverage", "chosen_thresholds", "plots/risk_coverage.png"]


def flatten(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}.").items()}


def test_repro_ends_with_evaluate_and_dvc_shows_its_metrics_and_plots(repo):
    out = dvc(repo, "repro")
    assert "Running stage 'evaluate'" in out
    # A quiet log: no TensorFlow/absl/CUDA start-up lines or C++ errors, no download, no Keras per-epoch lines.
    noise = [line for line in out.splitlines() if TENSORFLOW_NOISE.search(line)]
    assert not noise, "\n".join(noise)
    assert "Downloading" not in out and "Epoch 1/" not in out and "step - " not in out

    shown = json.loads(dvc(repo, "metrics", "show", "--json"))
    metrics = flatten(shown)
    # One file per model, the same few keys in each: DVC's table has a row per model.
    files = {re.search(r"metrics/(\w+\.json)\.data\.", key).group(1) for key in metrics}
    assert files == {"cnn.json", "head.json", "baseline.json"}, files
    for model in ("cnn", "head", "baseline"):
        for name in ("acc", "bal_acc", "bal_lo", "bal_hi", "f1"):
            assert any(key.endswith(f"metrics/{model}.json.data.{name}") for key in metrics), (model, name)
    for model in ("head", "baseline"):  # scored by the crossval stage too
        assert any(key.endswith(f"metrics/{model}.json.data.cv_bal") for key in metrics), model
    table = dvc(repo, "metrics", "show")
    assert "metrics/head.json" in table and "bal_acc" in table and "per_class" not in table
    assert max(len(line) for line in table.splitlines()) <= 100, table  # fits a terminal
    full = json.loads((repo / "metrics/test.json").read_text())  # every score, with intervals, stays in test.json
    assert {"cnn", "head", "baseline"} <= set(full) and "balanced_accuracy_ci" in full["head"]

    shown_plots = json.loads(dvc(repo, "plots", "show", "--json"))
    assert not shown_plots.get("errors"), shown_plots["errors"]
    plots = shown_plots["data"]
    assert set(DECLARED_PLOTS) <= set(plots), set(DECLARED_PLOTS) - set(plots)
    confusion = plots["cnn_confusion"][0]
    assert confusion["type"] == "vega"
    # the data behind the confusion plot carries class names
    assert "round_neck" in json.dumps(confusion)
    page = repo / "dvc_plots" / "index.html"
    dvc(repo, "plots", "show", "-o", "dvc_plots")
    html = page.read_text()
    assert "cdn.jsdelivr.net" not in html and "vegaEmbed" in html  # the offline template: Vega is inlined


def test_metrics_diff_shows_the_change_after_switching_backbone(repo):
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a run with mobilenet")
    dvc(repo, "exp", "run", "-S", "model=vgg16")
    diff = flatten(json.loads(dvc(repo, "metrics", "diff", "--all", "--json")))
    # Per metric DVC reports old, new and diff. The CNN never sees the backbone: its numbers stay; the
    # head's and the baseline's are listed beside their old values (on 3 tiny test images they may tie).
    for model in ("head", "baseline"):
        for name in ("bal_acc", "f1", "cv_bal"):
            assert isinstance(diff[f"metrics/{model}.json.{name}.old"], float), (model, name, diff)
            assert isinstance(diff[f"metrics/{model}.json.{name}.new"], float), (model, name, diff)
    assert all(diff[f"metrics/cnn.json.{name}.diff"] == 0 for name in ("acc", "bal_acc", "f1")), diff
    text = dvc(repo, "metrics", "diff", "--all")
    assert "metrics/head.json" in text and "bal_acc" in text


def test_an_unwritable_output_stops_dvc_repro_before_dvc_removes_any_other_output(repo):
    """DVC removes a stage's outputs just before it runs it: scan, which runs first, checks them all."""
    import shutil
    import subprocess
    import sys

    dvc(repo, "repro")
    model = (repo / "models/head.keras").read_bytes()
    shutil.rmtree(repo / "plots/head")
    (repo / "plots/head").write_text("a file where the head's plot folder should be")
    result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, capture_output=True, text=True)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "error: cannot write plots/head/" in out and "plots/head is a file, not a folder" in out
    assert "no output of the pipeline was removed" in out
    assert "Running stage 'train_head'" not in out and "Traceback" not in out
    assert (repo / "models/head.keras").read_bytes() == model and (repo / "models/head.json").is_file()

    (repo / "plots/head").unlink()
    dvc(repo, "checkout", "train_head", "evaluate")  # what the message of a stage run alone advises
    assert "didn't change, skipping" in dvc(repo, "repro", "train_head")
