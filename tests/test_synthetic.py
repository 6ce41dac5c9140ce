"""Tests for the embedded synthetic data set (fashion/data/synthetic/, stage synthesize): small images, small counts."""

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from fashion.data.synthetic import writer
from fashion.data.synthetic.painting import render_garment
from fashion.data.synthetic.scenes import NECKLINES
from fashion.data.synthetic.writer import generate_dataset, synthesize
from fashion.errors import PipelineError
from fashion.params import load_params
from fashion.paths import Paths
from tests.helpers import REPO

SIZE = 64  # small enough to keep the whole file at a few seconds
SEED = 7
SMALL_COUNTS = {"round_neck": 3, "scoop_neck": 2, "v_neck": 2, "square_neck": 1, "boat_neck": 2}


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under root, by relative path, with its bytes."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable image"
    return image


# --- public constants ---------------------------------------------------------------------


def test_default_counts_cover_every_class_and_are_imbalanced():
    counts = load_params(REPO / "params.yaml").synthetic.counts
    assert NECKLINES == ("round_neck", "scoop_neck", "v_neck", "square_neck", "boat_neck")
    assert set(counts) == set(NECKLINES)
    assert 1000 <= sum(counts.values()) <= 1200
    assert len(set(counts.values())) > 1  # the training stage's balancing needs something to do


# --- render_garment -----------------------------------------------------------------------


@pytest.mark.parametrize("neckline", NECKLINES)
def test_render_is_an_rgb_uint8_image_of_the_requested_size(neckline):
    image = render_garment(neckline, np.random.default_rng(0), size=80)
    assert image.shape == (80, 80, 3)
    assert image.dtype == np.uint8
    assert image.std() > 10, "image is (nearly) blank"


def test_render_is_deterministic_given_the_rng_state():
    first = render_garment("v_neck", np.random.default_rng(123), SIZE)
    second = render_garment("v_neck", np.random.default_rng(123), SIZE)
    other = render_garment("v_neck", np.random.default_rng(124), SIZE)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_render_rejects_an_unknown_neckline():
    with pytest.raises(ValueError, match="unknown neckline 'turtle_neck'.*round_neck"):
        render_garment("turtle_neck", np.random.default_rng(0), SIZE)


# --- generate_dataset: layout, determinism, independence ----------------------------------


def test_writes_one_folder_per_requested_class_with_exact_counts(tmp_path):
    out = tmp_path / "data"
    written = generate_dataset(out, SMALL_COUNTS, SIZE, SEED)

    assert written == SMALL_COUNTS
    assert sorted(p.name for p in out.iterdir()) == sorted(SMALL_COUNTS)
    for neckline, count in SMALL_COUNTS.items():
        names = sorted(p.name for p in (out / neckline).iterdir())
        assert names == [f"{neckline}_{i:04d}.jpg" for i in range(count)]


def test_a_subset_of_classes_writes_only_those_folders(tmp_path):
    out = tmp_path / "data"
    generate_dataset(out, {"boat_neck": 2}, SIZE, SEED)
    assert [p.name for p in out.iterdir()] == ["boat_neck"]


def test_files_are_valid_jpegs_of_the_requested_size_that_differ_within_a_class(tmp_path):
    out = tmp_path / "data"
    generate_dataset(out, SMALL_COUNTS, SIZE, SEED)

    for neckline in SMALL_COUNTS:
        images = []
        for path in sorted((out / neckline).glob("*.jpg")):
            data = path.read_bytes()
            assert data[:3] == b"\xff\xd8\xff", f"{path.name} is not a JPEG"
            image = decode(data)
            assert image.shape == (SIZE, SIZE, 3)
            assert image.std() > 10, f"{path.name} is (nearly) blank"
            images.append(image)
        for a, b in itertools.combinations(images, 2):
            assert np.abs(a.astype(int) - b.astype(int)).mean() > 5, f"two {neckline} images are (nearly) the same"


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate_dataset(tmp_path / "a", SMALL_COUNTS, SIZE, SEED)
    generate_dataset(tmp_path / "b", SMALL_COUNTS, SIZE, SEED)
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")


def test_worker_processes_write_the_files_one_process_writes(tmp_path):
    counts = {"round_neck": 20, "v_neck": 14}  # 34 images: two chunks of RENDER_CHUNK, so two workers
    assert sum(counts.values()) // writer.RENDER_CHUNK >= 2
    for name, workers in (("one", 1), ("two", 2)):
        (tmp_path / name).mkdir()
        writer._write_images(tmp_path / name, counts, SIZE, SEED, workers=workers)
    assert read_tree(tmp_path / "one") == read_tree(tmp_path / "two")
    assert len(read_tree(tmp_path / "two")) == 34


def test_different_seed_gives_different_images(tmp_path):
    generate_dataset(tmp_path / "a", SMALL_COUNTS, SIZE, SEED)
    generate_dataset(tmp_path / "b", SMALL_COUNTS, SIZE, SEED + 1)
    first, second = read_tree(tmp_path / "a"), read_tree(tmp_path / "b")
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_changing_one_class_count_leaves_the_other_classes_identical(tmp_path):
    generate_dataset(tmp_path / "a", SMALL_COUNTS, SIZE, SEED)
    generate_dataset(tmp_path / "b", {**SMALL_COUNTS, "round_neck": 5}, SIZE, SEED)
    first, second = read_tree(tmp_path / "a"), read_tree(tmp_path / "b")

    for name, data in first.items():  # every old file, round_neck's first three included
        assert second[name] == data, f"{name} changed"
    assert len(list((tmp_path / "b" / "round_neck").iterdir())) == 5


def test_a_successful_run_replaces_an_existing_data_set(tmp_path):
    out = tmp_path / "data"
    (out / "old_class").mkdir(parents=True)
    (out / "old_class" / "stale.jpg").write_bytes(b"stale")

    generate_dataset(out, {"v_neck": 1}, SIZE, SEED)

    assert [p.name for p in out.iterdir()] == ["v_neck"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary or old copy left


# --- generate_dataset: atomic output ------------------------------------------------------


@pytest.fixture
def render_fails_on_fifth_call(monkeypatch):
    calls = itertools.count(1)  # SMALL_COUNTS is under two chunks: rendered in this process, where the patch holds
    real_render = writer.render_garment

    def flaky_render(neckline, rng, size=256):
        if next(calls) == 5:
            raise RuntimeError("renderer broke")
        return real_render(neckline, rng, size)

    monkeypatch.setattr(writer, "render_garment", flaky_render)


def test_a_failure_midway_leaves_no_output_and_no_temporary_directory(tmp_path, render_fails_on_fifth_call):
    out = tmp_path / "data"
    with pytest.raises(RuntimeError, match="renderer broke"):
        generate_dataset(out, SMALL_COUNTS, SIZE, SEED)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_midway_leaves_an_existing_data_set_untouched(tmp_path, render_fails_on_fifth_call):
    out = tmp_path / "data"
    generate_dataset(out, {"round_neck": 2}, SIZE, SEED)
    before = read_tree(out)

    with pytest.raises(RuntimeError, match="renderer broke"):
        generate_dataset(out, SMALL_COUNTS, SIZE, SEED)

    assert read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_an_unknown_class_after_a_valid_one_writes_nothing(tmp_path):
    out = tmp_path / "data"
    (out / "round_neck").mkdir(parents=True)
    (out / "round_neck" / "keep.jpg").write_bytes(b"keep")

    with pytest.raises(ValueError, match="unknown class"):
        generate_dataset(out, {"round_neck": 2, "polo_neck": 2}, SIZE, SEED)

    assert read_tree(out) == {"round_neck/keep.jpg": b"keep"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


# --- generate_dataset: class names (sizes, counts and the seed are params.py's to check) ---


def test_an_unknown_class_raises_a_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown class\(es\) \['polo_neck'\].*round_neck, scoop_neck, v_neck"):
        generate_dataset(tmp_path / "data", {"polo_neck": 3}, SIZE, SEED)
    assert list(tmp_path.iterdir()) == []


# --- the DVC stage ------------------------------------------------------------------------


def run_stage_with(tmp_path, monkeypatch, counts, size=SIZE):
    """Run main() in tmp_path with the repository's params.yaml, synthetic section overridden."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synthetic"] = {"image_size": size, "counts": counts}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    synthesize(load_params(), Paths())
    return params


def test_stage_writes_the_data_set_that_params_describe(tmp_path, monkeypatch):
    params = run_stage_with(tmp_path, monkeypatch, {"v_neck": 2, "boat_neck": 1})

    out = tmp_path / "data" / "synthetic"
    assert {p.name: len(list(p.iterdir())) for p in out.iterdir()} == {"v_neck": 2, "boat_neck": 1}
    generate_dataset(tmp_path / "expected", {"v_neck": 2, "boat_neck": 1}, SIZE, params["seed"])
    assert read_tree(out) == read_tree(tmp_path / "expected")  # same seed, same bytes


def test_stage_reports_an_unknown_class_in_params_as_a_user_error(tmp_path, monkeypatch):
    with pytest.raises(PipelineError, match=r"params.yaml: 'synthetic': unknown class\(es\) \['polo_neck'\]"):
        run_stage_with(tmp_path, monkeypatch, {"round_neck": 2, "polo_neck": 1})
    assert not (tmp_path / "data").exists()
