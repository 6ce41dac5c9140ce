"""Fixtures shared by the test modules: whole pipeline runs on real photos (helpers: tests/helpers.py)."""

import pytest

from tests.helpers import (
    MOBILENET_025,
    RUNNING,
    TINY_RUN,
    TRAINED_REGION,
    copy_photos,
    make_params,
    require_marker,
    run_pipeline,
)

SHARED_FIXTURES = {"trained", "trained_random", "decided"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before the test's fixtures: the markers it must carry are checked against it (helpers.require_marker)."""
    RUNNING["item"] = item
    # Made once a session, so only their first user would read ../shared: every user carries the marker.
    for name in SHARED_FIXTURES & set(item.fixturenames):
        require_marker("shared_data", f"uses the {name} fixture (photos and weights from ../shared)")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(params, root): prepare, extract, resample, train_head, finetune, train_cnn, evaluate run under root."""
    from fashion.presets import preset

    root = tmp_path_factory.mktemp("trained")
    photos = copy_photos(root / "photos", per_class=12)
    # The original network, made tiny by TINY_RUN: in 3 epochs on 12 photos a class the necklines
    # recipe predicts one class, whose zero-width intervals would hide whether evaluate computes them.
    params = make_params(**{"data.source": "folder", "data.path": str(photos),
                            "features.weights": str(MOBILENET_025()), **preset("cnn_original"), **TINY_RUN,
                            **TRAINED_REGION})
    return run_pipeline(params, root)


@pytest.fixture(scope="session")
def trained_random(tmp_path_factory):
    """(params, root): the head and the CNN trained and evaluated as in `trained`, but on features of a
    backbone with random weights (features.weights: none), and without the fine-tuned model."""
    root = tmp_path_factory.mktemp("trained_random")
    photos = copy_photos(root / "photos", per_class=8)
    params = make_params(**{"data.source": "folder", "data.path": str(photos), "data.image_size": 32,
                            "features.weights": "none", "features.alpha": 0.25, "head.epochs": 3, "head.units": 8,
                            "cnn.image_size": 32, "cnn.filters": [4], "cnn.epochs": 1, "finetune.enabled": False,
                            "evaluate.mistakes": 2, "evaluate.bootstrap": 50})
    return run_pipeline(params, root)


# The decide stage's tiny cross-validation: two folds, a few epochs (the head's numbers are not the point).
TINY_CV = {"crossval.folds": 2, "crossval.repeats": 1, "crossval.validation": 0.5, "evaluate.bootstrap": 200}


@pytest.fixture(scope="session")
def decided(trained, tmp_path_factory):
    """(params, root): a copy of `trained` with crossval, decide and evaluate run again: models/decisions/ holds
    every model's decision rule and the novelty reference, metrics/ the decision numbers."""
    import shutil

    from fashion.evaluation.crossval import crossval
    from fashion.evaluation.decisions import decide
    from fashion.evaluation.evaluate import evaluate
    from fashion.paths import Paths
    from tests.helpers import override

    params, source = trained
    root = tmp_path_factory.mktemp("decided")
    for name in ("photos", "data", "models", "plots", "metrics"):
        shutil.copytree(source / name, root / name, symlinks=True)
    params = override(params, TINY_CV)
    for stage in (crossval, decide, evaluate):
        stage(params, Paths(root))
    return params, root
