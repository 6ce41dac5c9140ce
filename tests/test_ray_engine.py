"""The extract stage's Ray engine on a real local Ray cluster (2 CPUs, 2 workers), with real MobileNet 0.25
weights on real photos: the same features as the local engine, in the same order; a worker killed mid-run
loses and duplicates nothing; a cluster that is not there is a clear error and nothing is written.
"""

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import ray
import yaml

from fashion.data import dataset
from fashion.data.preparation import prepare
from fashion.data.recipes import BackboneRecipe
from fashion.errors import PipelineError
from fashion.features import ray_engine
from fashion.features.extraction import extract, extract_features
from fashion.features.frozen_backbone import build_extractor
from fashion.features.store import load_split_rows
from fashion.paths import Paths
from tests.helpers import MOBILENET_025, REPO, copy_photos, make_params, override, prepared_photos

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

SIZE = 32
RAY = {"features.engine": "ray", "features.ray.workers": 2}
WORKER_TITLE = "MapWorker(MapBatches(BackboneWorker))"


@pytest.fixture(scope="module")
def cluster():
    """A real Ray cluster on this machine with 2 CPUs; yields its address (host:port), then stops it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(params, prepared dir) of 4 real photos per class at 32 px, MobileNet 0.25, batches of 4, no cache."""
    root = tmp_path_factory.mktemp("ray_photos")
    return prepared_photos(root, per_class=4, size=SIZE, **{
        "features.weights": str(MOBILENET_025()), "features.alpha": 0.25, "features.batch_size": 4,
        "features.cache": False})


def splits(out):
    return {split: load_split_rows(out, split) for split in dataset.SPLITS}


def assert_same_features(out, reference):
    for split, (features, labels, rows) in splits(reference).items():
        ray_features, ray_labels, ray_rows = load_split_rows(out, split)
        np.testing.assert_array_equal(ray_rows, rows)  # the same images, in the same order
        np.testing.assert_array_equal(ray_labels, labels)
        np.testing.assert_allclose(ray_features, features, rtol=1e-5, atol=1e-5)


def test_the_ray_engine_writes_the_local_engines_features_in_the_same_order(cluster, photos, tmp_path, caplog):
    """With the feature cache: a first run on part of the photos, then all of them; only the new ones go to Ray."""
    params, prepared = photos
    cached = override(params, {**RAY, "features.cache": True})
    small = tmp_path / "small_prepared"
    prepare(make_params(**{"data.source": "folder", "data.path": str(copy_photos(tmp_path / "small", per_class=3)),
                           "data.image_size": SIZE}), Paths(tmp_path, prepared=small))
    with caplog.at_level(logging.INFO, logger="fashion"):
        extract(cached, Paths(tmp_path, prepared=small, features=tmp_path / "small_out", cache=tmp_path / "cache"))
        assert "0 images reused, 9 computed" in caplog.text
        caplog.clear()
        extract(cached, Paths(tmp_path, prepared=prepared, features=tmp_path / "ray", cache=tmp_path / "cache"))
        assert "9 images reused, 3 computed" in caplog.text
    extract(params, Paths(tmp_path, prepared=prepared, features=tmp_path / "local"))
    assert_same_features(tmp_path / "ray", tmp_path / "local")
    assert sum(len(rows) for _, _, rows in splits(tmp_path / "ray").values()) == 12
    local_info, ray_info = (json.loads((tmp_path / out / "info.json").read_text()) for out in ("local", "ray"))
    assert ray_info["backbone"] == local_info["backbone"] and ray_info["images"] == 12


def mapworkers():
    """{pid: command line} of this test's Ray actor processes that run the backbone."""
    found = {}
    for process in psutil.Process().children(recursive=True):
        try:
            title = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if WORKER_TITLE in title:
            found[process.pid] = title.strip()
    return found


class KillOneWorkerMidRun:
    """A progress object that, when the first batch comes back, kills a worker while it computes a batch."""

    def __init__(self, total):
        self.total, self.done, self.killed, self.done_at_kill = total, 0, None, None

    def update(self, count):
        self.done += count
        if self.killed is None:
            deadline = time.monotonic() + 20
            while self.killed is None and time.monotonic() < deadline:
                busy = [pid for pid, title in mapworkers().items() if title.endswith(".submit")]
                if busy:
                    os.kill(busy[0], signal.SIGKILL)
                    self.killed, self.done_at_kill = busy[0], self.done
                time.sleep(0.005)


def test_a_worker_killed_mid_run_loses_and_duplicates_no_row(cluster, tmp_path):
    # 24 images at 64 px, one image per batch: 24 tasks, so a kill at the first result lands mid-run.
    params, prepared = prepared_photos(tmp_path, per_class=8, size=64, **{
        "features.weights": str(MOBILENET_025()), "features.alpha": 0.25})
    recipe = BackboneRecipe.from_params(params)
    rows = np.arange(24)[::-1].copy()  # not the store's order: positions, not rows, decide where features go
    extractor = build_extractor(recipe, 64)
    with dataset.ImageStore(prepared / dataset.IMAGES_FILE) as store:
        expected = extract_features(extractor, store, rows, 1)

    progress = KillOneWorkerMidRun(len(rows))
    settings = make_params(**{"features.ray.workers": 2, "features.ray.num_gpus": 0}).features.ray
    features = ray_engine.extract_features(extractor.recipe, 64, prepared / dataset.IMAGES_FILE, rows, extractor.dim,
                                           settings, 1, progress)
    assert progress.killed is not None, "no worker was busy computing a batch when the first one came back"
    assert progress.done_at_kill < len(rows), "the run had finished before the kill: the test proves nothing"
    assert not psutil.pid_exists(progress.killed) or psutil.Process(progress.killed).status() == "zombie"
    assert progress.done == len(rows)  # each row came back once (extract_features also checks this)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    print(f"killed worker {progress.killed} after {progress.done_at_kill} of {len(rows)} images")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stage_repo(tmp_path, prepared, params):
    """A copy of the repository for `python -m stages.extract`: its code, params.yaml and data/prepared
    (Ray's workers import the stage's code from the folder the stage runs in)."""
    for code in ("stages", "fashion"):
        shutil.copytree(REPO / code, tmp_path / code, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "data").mkdir(parents=True)
    os.symlink(prepared, tmp_path / "data" / "prepared")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
    return tmp_path


def run_extract(repo):
    return subprocess.run([sys.executable, "-m", "stages.extract"], cwd=repo, capture_output=True, text=True,
                          timeout=300)


def test_the_stage_command_joins_a_running_cluster_by_its_address(cluster, photos, tmp_path):
    params, prepared = photos
    extract(params, Paths(tmp_path, prepared=prepared, features=tmp_path / "local"))
    repo = stage_repo(tmp_path / "repo", prepared, override(params, {**RAY, "features.ray.address": cluster}))
    result = run_extract(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"features.ray.address={cluster!r}" in result.stderr
    assert_same_features(repo / "data" / "features", tmp_path / "local")


def test_an_unreachable_address_is_a_clear_error_and_nothing_is_written(photos, tmp_path):
    params, prepared = photos
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    repo = stage_repo(tmp_path, prepared, override(params, {**RAY, "features.ray.address": address,
                                                            "features.cache": True}))
    result = run_extract(repo)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"error: no Ray cluster answers at features.ray.address='{address}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["prepared"] and not (repo / ".cache").exists()


def test_ray_is_imported_only_by_the_ray_engine(photos, tmp_path):
    params, prepared = photos
    code = ("import sys; from fashion.features.extraction import extract; from fashion.params import load_params; "
            "from fashion.paths import Paths; "
            f"extract(load_params(), Paths(prepared='{prepared}', features='out')); print('ray imported:', 'ray' in sys.modules)")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ray imported: False" in result.stdout and (tmp_path / "out" / "train.npz").is_file()


def test_without_ray_installed_the_ray_engine_says_how_to_get_it(photos, tmp_path):
    params, prepared = photos
    code = ("import sys; sys.modules['ray'] = None\n"  # what an environment without Ray looks like to `import ray`
            "from fashion.errors import PipelineError; from fashion.features.extraction import extract\n"
            "from fashion.params import load_params\n"
            "from fashion.paths import Paths\n"
            f"try:\n    extract(load_params(), Paths(prepared='{prepared}', features='out'))\n"
            "except PipelineError as err:\n    print(err)\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(override(params, RAY).model_dump(), sort_keys=False))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert "features.engine is ray, but Ray is not installed" in result.stdout, result.stderr[-3000:]
    assert not (tmp_path / "out").exists()


def test_more_workers_than_the_cluster_has_room_for_is_a_clear_error(cluster, photos, tmp_path):
    params, prepared = photos
    with pytest.raises(PipelineError, match=re.escape(
            "features.ray.workers=3 with features.ray.num_gpus=0 needs 3 CPUs and 0 GPUs, but this process's "
            "Ray cluster has 2 CPUs and 0 GPUs")):
        extract(override(params, {**RAY, "features.ray.workers": 3}),
                Paths(tmp_path, prepared=prepared, features=tmp_path / "out"))
    with pytest.raises(PipelineError, match="needs 2 CPUs and 2 GPUs"):
        extract(override(params, {**RAY, "features.ray.num_gpus": 1}),
                Paths(tmp_path, prepared=prepared, features=tmp_path / "out"))
    assert not (tmp_path / "out").exists()
