"""Real `dvc repro` and `dvc exp run` in a temporary copy of the repository, on a tiny configuration."""

import json

import pytest

from tests.repo_copy import copy_repo, dvc, git

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


DECLARED_PLOTS = ["cnn_confusion", "head_confusion", "cnn_accuracy", "cnn_loss", "head_accuracy", "head_loss",
                  "plots/cnn/confusion.png", "plots/head/confusion.png", "plots/cnn/curves.png",
                  "plots/head/curves.png", "plots/cnn/mistakes.png", "plots/head/mistakes.png"]


def flatten(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}.").items()}


def test_repro_ends_with_evaluate_and_dvc_shows_its_metrics_and_plots(repo):
    out = dvc(repo, "repro")
    assert "Running stage 'evaluate'" in out

    shown = json.loads(dvc(repo, "metrics", "show", "--json"))
    metrics = flatten(shown)
    for name in ("cnn.accuracy", "cnn.balanced_accuracy", "cnn.macro_f1", "head.accuracy",
                 "head.balanced_accuracy", "head.macro_f1", "head.low_confidence.share"):
        assert any(key.endswith(f"metrics/test.json.data.{name}") for key in metrics), name
    assert any(key.endswith("metrics/test.json.data.baseline.balanced_accuracy") for key in metrics)
    for name in ("head.balanced_accuracy_mean", "head.balanced_accuracy_sd", "baseline.balanced_accuracy_mean"):
        assert any(key.endswith(f"metrics/cv.json.data.{name}") for key in metrics), name

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
    diff = json.loads(dvc(repo, "metrics", "diff", "--json"))
    changed = flatten(diff)
    # per metric DVC reports old, new and diff; the head's log loss cannot stay the same with another backbone
    assert any("head.log_loss" in key and key.endswith(".diff") and value not in (0, None)
               for key, value in changed.items()), diff
    text = dvc(repo, "metrics", "diff")
    assert "head.log_loss" in text
