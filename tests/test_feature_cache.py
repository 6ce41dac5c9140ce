"""The extract stage's feature cache: a re-run computes only new images and writes the same outputs.

Real MobileNet 0.25 weights on real photos at 32 px, a few images per class, batches of 4.
"""

import logging
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from fashion.data import dataset
from fashion.data.preparation import prepare
from fashion.errors import PipelineError
from fashion.features.extraction import extract
from fashion.features.feature_cache import ENTRY_SUFFIX, USED_FILE, FeatureCache, evict, fingerprint
from fashion.features.store import load_split_rows
from fashion.paths import Paths
from tests.helpers import MOBILENET_025, copy_photos, make_params, override, prepared_photos

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

SIZE = 32
CACHED = {"features.alpha": 0.25, "features.batch_size": 4}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(params, prepared dir) of 4 photos per class, and the prepared dir of 7 per class (the same 4 and 3 more)."""
    root = tmp_path_factory.mktemp("photos")
    params, prepared = prepared_photos(root, per_class=4, size=SIZE, **{
        "features.weights": str(MOBILENET_025()), **CACHED})
    more_photos = copy_photos(root / "more_photos", per_class=7)
    prepare(make_params(**{"data.source": "folder", "data.path": str(more_photos), "data.image_size": SIZE}),
            Paths(root, prepared=root / "more_prepared"))
    return params, prepared, root / "more_prepared"


def run(params, prepared, out, cache, caplog, **overrides):
    """extract into out with the feature cache in `cache` (a folder named features, as in Paths); returns
    (reused, computed) from its log."""
    assert cache.name == "features"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fashion"):
        extract(override(params, overrides), Paths(out.parent, prepared=prepared, features=out, cache=cache.parent))
    found = re.search(r"(\d+) images reused, (\d+) computed", caplog.text)
    return (int(found[1]), int(found[2])) if found else None


def npz_members(out, split):
    """A split's .npz as bytes: the same arrays give the same file, zip headers included."""
    return (out / f"{split}.npz").read_bytes()


def info_file(out):
    """info.json as bytes: it holds no timing, so two runs that compute the same features write the same."""
    return (out / "info.json").read_bytes()


def entries(cache):
    return sorted(cache.rglob(f"*{ENTRY_SUFFIX}"))


def test_a_second_run_computes_nothing_and_writes_the_same_outputs(photos, tmp_path, caplog):
    params, prepared, _ = photos
    assert run(params, prepared, tmp_path / "first", tmp_path / "caches" / "features", caplog) == (0, 12)
    assert len(entries(tmp_path / "caches" / "features")) == 12
    assert run(params, prepared, tmp_path / "second", tmp_path / "caches" / "features", caplog) == (12, 0)
    for split in dataset.SPLITS:
        assert npz_members(tmp_path / "first", split) == npz_members(tmp_path / "second", split)
    assert info_file(tmp_path / "first") == info_file(tmp_path / "second")
    assert b"seconds" not in info_file(tmp_path / "first")

    # and the same as a run without the cache: the cache changes nothing in the outputs
    run(params, prepared, tmp_path / "plain", tmp_path / "unused" / "features", caplog, **{"features.cache": False})
    for split in dataset.SPLITS:
        assert npz_members(tmp_path / "plain", split) == npz_members(tmp_path / "first", split)


def test_added_images_are_the_only_ones_computed_and_match_a_run_from_scratch(photos, tmp_path, caplog):
    params, prepared, more_prepared = photos
    run(params, prepared, tmp_path / "small", tmp_path / "caches" / "features", caplog)
    assert run(params, more_prepared, tmp_path / "more", tmp_path / "caches" / "features", caplog) == (12, 9)
    run(params, more_prepared, tmp_path / "scratch", tmp_path / "caches" / "features", caplog, **{"features.cache": False})

    worst = 0.0
    for split in dataset.SPLITS:
        incremental, labels, rows = load_split_rows(tmp_path / "more", split)
        scratch, scratch_labels, scratch_rows = load_split_rows(tmp_path / "scratch", split)
        np.testing.assert_array_equal(rows, scratch_rows)
        np.testing.assert_array_equal(labels, scratch_labels)
        np.testing.assert_allclose(incremental, scratch, rtol=1e-5, atol=1e-5)
        worst = max(worst, float(np.abs(incremental - scratch).max()))
    print(f"largest difference, incremental vs from scratch: {worst:.3g}")


def test_a_damaged_entry_is_recomputed_with_a_warning(photos, tmp_path, caplog):
    params, prepared, _ = photos
    run(params, prepared, tmp_path / "first", tmp_path / "caches" / "features", caplog)
    truncated, flipped, *_ = entries(tmp_path / "caches" / "features")
    truncated.write_bytes(truncated.read_bytes()[:100])
    data = bytearray(flipped.read_bytes())
    data[10] ^= 0xFF
    flipped.write_bytes(bytes(data))

    assert run(params, prepared, tmp_path / "second", tmp_path / "caches" / "features", caplog) == (10, 2)
    assert "2 damaged entries" in caplog.text
    for split in dataset.SPLITS:
        assert npz_members(tmp_path / "first", split) == npz_members(tmp_path / "second", split)
    # repaired: the next run reuses everything
    assert run(params, prepared, tmp_path / "third", tmp_path / "caches" / "features", caplog) == (12, 0)


def test_cache_false_writes_no_cache(photos, tmp_path, caplog):
    params, prepared, _ = photos
    assert run(params, prepared, tmp_path / "out", tmp_path / "caches" / "features", caplog, **{"features.cache": False}) is None
    assert not (tmp_path / "caches" / "features").exists()
    assert sum(len(load_split_rows(tmp_path / "out", split)[2]) for split in dataset.SPLITS) == 12


def test_changed_weights_contents_alpha_or_region_are_a_new_fingerprint(tmp_path):
    weights = tmp_path / "weights.h5"
    shutil.copy(MOBILENET_025(), weights)
    backbone = {"model": "mobilenet", "weights": str(weights), "alpha": 0.25, "precision": "float32",
                "mirror": False, "seed": 42}
    preprocessing = {"image_size": SIZE, "resize": "pad", "region": {"top": 0.0, "bottom": 1.0, "left": 0.0,
                                                                     "right": 1.0}}
    original = fingerprint(backbone, preprocessing)

    renamed = tmp_path / "renamed.h5"
    shutil.copy(weights, renamed)
    assert fingerprint({**backbone, "weights": str(renamed)}, preprocessing) == original  # contents, not path
    assert fingerprint({**backbone, "alpha": 0.5}, preprocessing) != original
    assert fingerprint(backbone, {**preprocessing, "region": {**preprocessing["region"], "bottom": 0.6}}) != original
    assert fingerprint({**backbone, "weights": {"mobilenet": str(weights)}}, preprocessing) != \
        fingerprint({**backbone, "weights": {"mobilenet": "none"}}, preprocessing)
    with h5py.File(weights, "r+") as h5:  # the same file name, one weight changed
        h5["conv1/conv1/kernel:0"][0, 0, 0, 0] += 0.5
    assert fingerprint(backbone, preprocessing) != original


def test_new_weights_under_the_same_name_reuse_nothing(photos, tmp_path, caplog):
    params, prepared, _ = photos
    weights = tmp_path / "weights.h5"
    shutil.copy(MOBILENET_025(), weights)
    run(params, prepared, tmp_path / "before", tmp_path / "caches" / "features", caplog, **{"features.weights": str(weights)})
    with h5py.File(weights, "r+") as h5:
        h5["conv1/conv1/kernel:0"][...] *= 1.5
    assert run(params, prepared, tmp_path / "after", tmp_path / "caches" / "features", caplog,
               **{"features.weights": str(weights)}) == (0, 12)
    before, _, _ = load_split_rows(tmp_path / "before", "train")
    after, _, _ = load_split_rows(tmp_path / "after", "train")
    assert np.abs(before - after).max() > 1e-3  # the new weights' features, not the old ones
    assert len([p for p in (tmp_path / "caches" / "features").iterdir()]) == 2


def test_over_the_cap_the_least_recently_used_configuration_is_removed(photos, tmp_path, caplog):
    params, prepared, _ = photos
    run(params, prepared, tmp_path / "whole", tmp_path / "caches" / "features", caplog)
    (whole,) = (tmp_path / "caches" / "features").iterdir()
    top = {"data.region.bottom": 0.6}
    # another region is another preprocessing: re-prepare, then nothing is reused
    top_params = make_params(**{"data.source": "folder", "data.path": str(prepared.parent / "photos"),
                                "data.image_size": SIZE, "features.weights": str(MOBILENET_025()), **CACHED, **top})
    prepare(top_params, Paths(tmp_path, prepared=tmp_path / "top_prepared"))
    # room for one configuration's 12 entries, not two
    one = sum(entry.stat().st_blocks * 512 for entry in entries(whole))
    assert run(top_params, tmp_path / "top_prepared", tmp_path / "top", tmp_path / "caches" / "features", caplog,
               **{"features.cache_max_gb": 1.5 * one / 1e9}) == (0, 12)
    (left,) = (tmp_path / "caches" / "features").iterdir()
    assert left != whole and len(entries(left)) == 12


def fake_folder(root, name, keys, used_at):
    folder = root / name
    for key in keys:
        (folder / key[:2]).mkdir(parents=True, exist_ok=True)
        (folder / key[:2] / f"{key}{ENTRY_SUFFIX}").write_bytes(b"x" * 1000)
    (folder / USED_FILE).touch()
    os.utime(folder / USED_FILE, (used_at, used_at))
    return folder


def test_eviction_order_and_what_it_keeps(tmp_path, caplog):
    old = fake_folder(tmp_path, "old", ["aa1", "aa2"], used_at=1000)
    recent = fake_folder(tmp_path, "recent", ["bb1", "bb2"], used_at=2000)
    current = fake_folder(tmp_path, "current", ["cc1", "cc2", "cd3"], used_at=3000)
    entry = (old / "aa" / f"aa1{ENTRY_SUFFIX}").stat().st_blocks * 512  # the cap counts bytes on disk
    assert evict(tmp_path, 6 * entry, current, keep={"cc1", "cc2", "cd3"}) == 2 * entry
    assert not old.exists() and recent.exists() and current.exists()

    # still over: first the other configuration, then this one's images no longer in the data set
    evict(tmp_path, 2.5 * entry, current, keep={"cc1", "cc2"})
    assert not recent.exists() and [p.stem for p in entries(current)] == ["cc1", "cc2"]

    # this run's own images are kept, with a warning, when they alone are over the cap
    with caplog.at_level(logging.WARNING):
        evict(tmp_path, entry, current, keep={"cc1", "cc2"})
    assert len(entries(current)) == 2 and "raise it" in caplog.text


def test_what_a_killed_writer_left_is_never_read_and_is_removed(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    current = fake_folder(tmp_path, "current", ["cc1"], used_at=3000)
    leftover = current / "cc" / f".cc2{ENTRY_SUFFIX}.tmp-{gone}"
    leftover.write_bytes(b"half")
    assert FeatureCache(tmp_path, "current", 250).load("cc2") is None  # absent, not damaged
    evict(tmp_path, 10**9, current, keep={"cc1"})
    assert not leftover.exists() and len(entries(current)) == 1


@pytest.mark.parametrize("overrides, message", [
    ({"features.cache": "yes"}, "'features.cache' must be true or false, got 'yes'"),
    ({"features.cache_max_gb": 0}, "'features.cache_max_gb' is 0; it must be between 0 and 100000 (exclusive)"),
    ({"features.cache_max_gb": "5GB"}, "'features.cache_max_gb' must be a number, got '5GB'"),
])
def test_cache_params_are_validated(overrides, message):
    with pytest.raises(PipelineError) as err:
        make_params(**overrides)
    assert message in str(err.value)


def test_a_killed_extract_keeps_the_batches_it_computed_and_a_rerun_computes_only_the_rest(tmp_path, caplog):
    """`python -m stages.extract` killed with SIGKILL after some batches; the rerun reuses every entry it wrote."""
    import signal
    import time

    import yaml

    from tests.helpers import REPO

    # VGG16 with random weights at 128 px: slow enough on a CPU (batches of 2) to be killed halfway.
    overrides = {"data.source": "folder", "data.image_size": 128, "model": "vgg16", "features.weights": "none",
                 "features.batch_size": 2}
    params = make_params(**overrides, **{"data.path": str(copy_photos(tmp_path / "photos", per_class=20))})
    prepare(params, Paths(tmp_path))
    total = len(dataset.read_manifest(tmp_path / "data/prepared"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump()))
    cache = tmp_path / ".cache/features"

    stage = subprocess.Popen([sys.executable, "-m", "stages.extract"], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(entries(cache)) < 6 and stage.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    stage.send_signal(signal.SIGKILL)
    stage.communicate()
    assert stage.returncode == -signal.SIGKILL, "extract ended before it could be killed: give it more images"
    kept = len(entries(cache))
    assert 6 <= kept < total and not (tmp_path / "data/features").exists()

    assert run(params, tmp_path / "data/prepared", tmp_path / "data/features", cache, caplog) == (kept, total - kept)
    assert len(entries(cache)) == total
