"""The prepare stage's decode cache: a photo already decoded is not decoded again, and the outputs
are byte for byte those of a run without the cache."""

import json
import logging
import os
import re

import numpy as np
from PIL import Image

from fashion.data import dataset
from fashion.data.decode_cache import ENTRY_SUFFIX
from fashion.data.preparation import prepare
from fashion.paths import Paths
from tests.corpus import write_bad_files
from tests.helpers import make_params

SIZE = 32
OUTPUTS = (dataset.IMAGES_FILE, dataset.MANIFEST_FILE, dataset.SUMMARY_FILE)


def write_photos(folder, per_class, start=0, classes=("cats", "dogs")):
    """Distinct small JPEGs and PNGs, per_class in each class folder, numbered from start."""
    for class_index, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for number in range(start, start + per_class):
            rng = np.random.default_rng([class_index, number])
            pixels = rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)
            extension = "jpg" if number % 2 else "png"
            Image.fromarray(pixels).save(folder / name / f"{name}-{number:03d}.{extension}")
    return folder


def run(photos, out, cache_dir, caplog, **overrides):
    """Prepare photos into out; return (files reused, files decoded) as the log reports them."""
    params = make_params(**{"data.source": "folder", "data.path": str(photos), "data.image_size": SIZE,
                            **overrides})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fashion"):
        prepare(params, Paths(out.parent, prepared=out, cache=cache_dir))
    found = [re.search(r"(\d+) files reused, (\d+) decoded", r.getMessage()) for r in caplog.records]
    found = [m for m in found if m]
    return (int(found[0][1]), int(found[0][2])) if found else None


def outputs(folder):
    return {name: (folder / name).read_bytes() for name in OUTPUTS}


def entries(cache_dir):
    return sorted(cache_dir.rglob(f"*{ENTRY_SUFFIX}"))


def test_a_second_run_decodes_nothing_and_writes_the_same_bytes(tmp_path, caplog):
    photos = write_photos(tmp_path / "photos", per_class=6)
    cache = tmp_path / "cache"

    assert run(photos, tmp_path / "first", cache, caplog) == (0, 12)
    assert len(entries(cache)) == 12
    assert run(photos, tmp_path / "second", cache, caplog) == (12, 0)
    assert outputs(tmp_path / "second") == outputs(tmp_path / "first")


def test_added_files_alone_are_decoded_and_the_result_equals_a_run_without_cache(tmp_path, caplog):
    photos = write_photos(tmp_path / "photos", per_class=6)
    cache = tmp_path / "cache"
    run(photos, tmp_path / "before", cache, caplog)

    write_photos(photos, per_class=2, start=6, classes=("cats",))
    write_photos(photos, per_class=1, start=6, classes=("dogs",))
    assert run(photos, tmp_path / "cached", cache, caplog) == (12, 3)
    assert run(photos, tmp_path / "scratch", tmp_path / "unused", caplog, **{"data.cache": False}) is None
    assert outputs(tmp_path / "cached") == outputs(tmp_path / "scratch")


def test_a_touched_file_or_a_new_region_is_decoded_again(tmp_path, caplog):
    photos = write_photos(tmp_path / "photos", per_class=6)
    cache = tmp_path / "cache"
    run(photos, tmp_path / "first", cache, caplog)

    touched = photos / "cats" / "cats-002.png"
    info = touched.stat()
    os.utime(touched, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert run(photos, tmp_path / "touched", cache, caplog) == (11, 1)

    region = {"top": 0.0, "bottom": 0.6, "left": 0.1, "right": 0.9}
    assert run(photos, tmp_path / "region", cache, caplog, **{"data.region": region}) == (0, 12)
    assert run(photos, tmp_path / "region2", cache, caplog, **{"data.region": region}) == (12, 0)
    assert run(photos, tmp_path / "scratch", tmp_path / "unused", caplog,
               **{"data.region": region, "data.cache": False}) is None
    assert outputs(tmp_path / "region2") == outputs(tmp_path / "scratch")
    assert outputs(tmp_path / "region") != outputs(tmp_path / "first")


def test_a_damaged_entry_is_decoded_again(tmp_path, caplog):
    photos = write_photos(tmp_path / "photos", per_class=6)
    cache = tmp_path / "cache"
    run(photos, tmp_path / "first", cache, caplog)

    flipped, truncated = entries(cache)[:2]
    data = bytearray(flipped.read_bytes())
    data[100] ^= 0xFF  # one pixel: same size, wrong checksum
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:-10])

    assert run(photos, tmp_path / "second", cache, caplog) == (10, 2)
    assert any("2 damaged entries" in r.getMessage() for r in caplog.records)
    assert outputs(tmp_path / "second") == outputs(tmp_path / "first")
    assert run(photos, tmp_path / "third", cache, caplog) == (12, 0)  # repaired


def test_no_cache_is_written_when_it_is_off(tmp_path, caplog):
    photos = write_photos(tmp_path / "photos", per_class=6)
    cache = tmp_path / "cache"

    assert run(photos, tmp_path / "first", cache, caplog, **{"data.cache": False}) is None
    assert not cache.exists()


def test_unreadable_files_are_not_cached_and_are_skipped_on_every_run(tmp_path, caplog):
    photos = write_photos(tmp_path / "photos", per_class=6)
    bad = write_bad_files(photos / "cats")
    cache = tmp_path / "cache"

    assert run(photos, tmp_path / "first", cache, caplog) == (0, 12 + len(bad))
    assert len(entries(cache)) == 12
    assert run(photos, tmp_path / "second", cache, caplog) == (12, len(bad))
    assert outputs(tmp_path / "second") == outputs(tmp_path / "first")
    summary = json.loads((tmp_path / "second" / dataset.SUMMARY_FILE).read_text())
    assert summary["skipped_by_kind"] == {"bad_image": len(bad)}
    assert {s["path"] for s in summary["skipped"]} == {f"cats/{path.name}" for path, _ in bad.values()}

    # a repaired file is picked up: it is decoded, then cached
    repaired = bad["text_as_jpg"][0]
    Image.fromarray(np.full((40, 40, 3), 7, np.uint8)).save(repaired, format="JPEG")
    assert run(photos, tmp_path / "third", cache, caplog) == (12, len(bad))
    assert run(photos, tmp_path / "fourth", cache, caplog) == (13, len(bad) - 1)


def test_over_the_cap_other_configurations_go_first_and_this_runs_files_stay(tmp_path, caplog):
    photos = write_photos(tmp_path / "photos", per_class=6)
    cache = tmp_path / "cache"
    run(photos, tmp_path / "first", cache, caplog)
    old_folder = entries(cache)[0].parents[1]

    region = {"top": 0.0, "bottom": 0.6, "left": 0.1, "right": 0.9}
    run(photos, tmp_path / "second", cache, caplog, **{"data.region": region, "data.cache_max_gb": 1e-9})
    assert not old_folder.exists()
    assert len(entries(cache)) == 12
    assert any("data.cache_max_gb" in r.getMessage() for r in caplog.records)
