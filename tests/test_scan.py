"""The scan stage: the inventory prepare depends on, and real `dvc repro` on a folder with broken symlinks."""

import json
import os
import shutil
import time

import pytest

from fashion.data.inventory import scan
from fashion.errors import PipelineError
from tests.helpers import NECKLINES, copy_photos
from tests.repo_copy import copy_repo, dvc, set_params


def add_broken_links(photos):
    """A dangling symlink, a file symlink loop and a folder symlink loop among real photos."""
    (photos / "v_neck" / "gone.jpg").symlink_to(photos / "v_neck" / "deleted-long-ago.jpg")
    (photos / "henley" / "loop_a.jpg").symlink_to("loop_b.jpg")
    (photos / "henley" / "loop_b.jpg").symlink_to("loop_a.jpg")
    (photos / "round_neck" / "again").symlink_to("..", target_is_directory=True)
    return photos


@pytest.mark.shared_data
def test_the_inventory_lists_usable_files_with_hashes_and_skips_broken_links_with_reasons(tmp_path):
    photos = add_broken_links(copy_photos(tmp_path / "photos", per_class=3))
    (photos / "henley" / "notes.txt").write_text("not a photo")

    inventory = scan(photos, "folder", tmp_path / "hashes.json")

    assert [f["path"] for f in inventory["files"]] == sorted(
        p.relative_to(photos).as_posix() for p in photos.rglob("*.jpg") if p.is_file() and "again" not in p.parts)
    assert len(inventory["files"]) == 9
    first = inventory["files"][0]
    assert first["size"] == (photos / first["path"]).stat().st_size and len(first["sha256"]) == 64
    skipped = {entry["path"]: entry for entry in inventory["skipped"]}
    assert skipped["v_neck/gone.jpg"]["kind"] == "broken_link"
    assert skipped["v_neck/gone.jpg"]["reason"].startswith("broken symbolic link: its target ")
    assert skipped["henley/loop_a.jpg"]["kind"] == skipped["henley/loop_b.jpg"]["kind"] == "symlink_loop"
    assert skipped["round_neck/again"]["kind"] == "symlink_loop"
    assert skipped["henley/notes.txt"]["kind"] == "unsupported_type"


@pytest.mark.shared_data
def test_the_inventory_changes_with_the_contents_not_with_the_modification_time(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=3)
    cache = tmp_path / "hashes.json"
    before = scan(photos, "folder", cache)
    assert scan(photos, "folder", cache) == before
    assert scan(photos, "folder", None) == before  # the hash cache changes nothing but the time it takes

    photo = photos / before["files"][0]["path"]
    later = time.time() + 100
    os.utime(photo, (later, later))
    assert scan(photos, "folder", cache) == before

    data = bytearray(photo.read_bytes())
    data[-3] ^= 0xFF  # same size, other contents, then the old modification time again
    stamp = photo.stat()
    photo.write_bytes(bytes(data))
    os.utime(photo, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))
    changed = scan(photos, "folder", cache)
    assert changed["files"][0]["sha256"] != before["files"][0]["sha256"]
    assert changed["files"][1:] == before["files"][1:]


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match=r"data.path .*nowhere does not exist; point data.path at a folder"):
        scan(tmp_path / "nowhere", "folder")


TINY = {"data.image_size": 32, "synthetic.image_size": 64,
        "synthetic.counts": {"round_neck": 8, "v_neck": 6, "scoop_neck": 5}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("repo"), TINY)


@pytest.mark.shared_data
def test_dvc_repro_skips_broken_links_reruns_prepare_on_new_photos_and_only_then(repo, tmp_path):
    photos = add_broken_links(copy_photos(tmp_path / "photos", per_class=5))
    # As the README says to run it; DVC used to stop here with [Errno 2] or [Errno 40] while hashing data.path.
    first = dvc(repo, "exp", "run", "-S", "data.source=folder", "-S", f"data.path={photos}", "prepare")

    assert "Running stage 'prepare'" in first
    summary = json.loads((repo / "data/prepared/summary.json").read_text())
    assert summary["totals"]["total"] == 15
    kinds = {entry["path"]: entry["kind"] for entry in summary["skipped"]}
    assert kinds["v_neck/gone.jpg"] == "broken_link" and kinds["henley/loop_a.jpg"] == "symlink_loop"
    assert kinds["round_neck/again"] == "symlink_loop"

    again = dvc(repo, "repro", "prepare")
    assert "Running stage 'scan'" in again and "Running stage 'prepare'" not in again

    later = time.time() + 100
    for photo in photos.rglob("*.jpg"):  # touched, as a copy or a checkout does: not a change
        if photo.is_file() and not photo.is_symlink():
            os.utime(photo, (later, later))
    assert "Running stage 'prepare'" not in dvc(repo, "repro", "prepare")

    shutil.copy(sorted((NECKLINES() / "v_neck").glob("*.jpg"))[5], photos / "v_neck" / "new.jpg")
    assert "Running stage 'prepare'" in dvc(repo, "repro", "prepare")
    assert json.loads((repo / "data/prepared/summary.json").read_text())["totals"]["total"] == 16


def test_the_default_data_set_is_generated_before_it_is_scanned(repo):
    set_params(repo / "params.yaml", {"data.source": "synthetic", "data.path": "data/synthetic"})
    shutil.rmtree(repo / "data/synthetic", ignore_errors=True)

    out = dvc(repo, "repro", "prepare")

    # synthesize runs (or is restored from DVC's run cache) before scan reads its output
    assert out.index("'synthesize'") < out.index("Running stage 'scan'") < out.index("Running stage 'prepare'")
    inventory = json.loads((repo / "data/inventory.json").read_text())
    assert len(inventory["files"]) == 19 and inventory["skipped"] == []
    assert "Running stage 'prepare'" not in dvc(repo, "repro", "prepare")
