"""The prepare stage on real files: decoding, skipping, splitting, errors and atomic output."""

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fashion.data import dataset
from fashion.data.images import load_image
from fashion.data.preparation import prepare
from fashion.data.recipes import Preprocessing
from fashion.errors import PipelineError
from fashion.paths import Paths
from tests.corpus import write_bad_files, write_hidden_and_links
from tests.helpers import REPO, copy_photos, make_params, shared_path

SIZE = 32


def run_prepare(data_path, tmp_path, **overrides):
    params = make_params(**{"data.source": "folder", "data.path": str(data_path),
                            "data.image_size": SIZE, **overrides})
    out = tmp_path / "prepared"
    return prepare(params, Paths(tmp_path, prepared=out)), out


@pytest.mark.shared_data
def test_real_photos_are_decoded_resized_and_listed(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=10)
    summary, out = run_prepare(photos, tmp_path)

    images = np.load(out / dataset.IMAGES_FILE)
    records = dataset.read_manifest(out)
    assert images.shape == (30, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert summary["classes"] == ["henley", "round_neck", "v_neck"]
    assert summary["totals"] == {"train": 18, "validation": 6, "test": 6, "total": 30}
    assert summary["skipped_count"] == 0
    # each manifest row points at the decoded photo it names
    for record in records:
        assert (photos / record["path"]).is_file()
        assert record["label"] == Path(record["path"]).parts[0]
        assert summary["classes"][record["label_index"]] == record["label"]
    assert images.std() > 20  # real content, not blank


@pytest.mark.shared_data
def test_the_region_is_cut_out_of_every_photo_exactly_as_prediction_does(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=4)
    region = {"top": 0.0, "bottom": 0.6, "left": 0.1, "right": 0.9}
    summary, out = run_prepare(photos, tmp_path, **{"data.region": region, "data.resize": "crop"})

    images = np.load(out / dataset.IMAGES_FILE)
    assert summary["preprocessing"] == {"image_size": SIZE, "resize": "crop", "region": region, "locate": "none",
                                        "locate_box": None}
    for record in dataset.read_manifest(out):
        stored = images[record["row"]]
        assert np.array_equal(stored, load_image(photos / record["path"], Preprocessing(SIZE, "crop", region)))
        assert not np.array_equal(stored, load_image(photos / record["path"], Preprocessing(SIZE, "crop")))


@pytest.mark.shared_data
def test_split_is_stratified_disjoint_and_deterministic(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=20)
    summary, out = run_prepare(photos, tmp_path, **{"split.validation": 0.2, "split.test": 0.25})
    records = dataset.read_manifest(out)

    for name in summary["classes"]:  # the same fractions in every class
        assert summary["counts"][name] == {"train": 11, "validation": 4, "test": 5, "total": 20}
    by_split = {s: {r["sha256"] for r in records if r["split"] == s} for s in dataset.SPLITS}
    assert not (by_split["train"] & by_split["validation"])
    assert not (by_split["train"] & by_split["test"])
    assert not (by_split["validation"] & by_split["test"])

    _, again = run_prepare(photos, tmp_path / "again", **{"split.validation": 0.2, "split.test": 0.25})
    assert (again / dataset.MANIFEST_FILE).read_bytes() == (out / dataset.MANIFEST_FILE).read_bytes()
    assert (again / dataset.IMAGES_FILE).read_bytes() == (out / dataset.IMAGES_FILE).read_bytes()

    _, other_seed = run_prepare(photos, tmp_path / "seed", seed=7, **{"split.validation": 0.2, "split.test": 0.25})
    splits = [r["split"] for r in dataset.read_manifest(out)]
    assert splits != [r["split"] for r in dataset.read_manifest(other_seed)]


@pytest.mark.shared_data
def test_identical_images_never_land_in_two_splits(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=8)
    first = sorted((photos / "round_neck").glob("*.jpg"))[0]
    for copy in range(5):  # five copies in the same class: kept once
        shutil.copy(first, photos / "round_neck" / f"copy{copy}.jpg")
    conflict = sorted((photos / "v_neck").glob("*.jpg"))[0]
    shutil.copy(conflict, photos / "henley" / "mislabelled.jpg")  # same photo, two classes

    summary, out = run_prepare(photos, tmp_path)
    records = dataset.read_manifest(out)

    hashes = [r["sha256"] for r in records]
    assert len(hashes) == len(set(hashes))
    assert summary["skipped_by_kind"] == {"duplicate": 5, "label_conflict": 2}
    paths = {r["path"] for r in records}
    assert f"v_neck/{conflict.name}" not in paths and "henley/mislabelled.jpg" not in paths
    assert summary["totals"]["total"] == 24 - 1


@pytest.mark.shared_data
def test_bad_files_are_skipped_with_reasons(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=6)
    bad = write_bad_files(photos / "v_neck")
    hidden = write_hidden_and_links(photos / "round_neck")
    (photos / "henley" / "notes.txt").write_text("not an image")
    (photos / "stray.jpg").write_bytes(next((photos / "henley").glob("*.jpg")).read_bytes())

    summary, out = run_prepare(photos, tmp_path)

    skipped = {Path(s["path"]).name: s for s in summary["skipped"]}
    for name, (path, expected_reason) in bad.items():
        assert expected_reason in skipped[path.name]["reason"], name
        assert skipped[path.name]["kind"] == "bad_image"
    for name, path in hidden.items():
        assert path.name in skipped, name
    assert skipped["notes.txt"]["kind"] == "unsupported_type"
    assert skipped["stray.jpg"]["kind"] == "outside_class_folder"
    assert summary["totals"]["total"] == 18  # every good photo, nothing else
    assert np.load(out / dataset.IMAGES_FILE).shape[0] == 18


@pytest.mark.shared_data
def test_degenerate_images_are_skipped_with_reasons_and_the_limits_are_params(tmp_path):
    from PIL import Image

    photos = copy_photos(tmp_path / "photos", per_class=6)
    Image.new("RGB", (1, 100_000), (90, 60, 30)).save(photos / "v_neck" / "tall_strip.png")
    Image.new("RGB", (100_000, 1), (90, 60, 30)).save(photos / "henley" / "wide_strip.png")
    Image.new("RGB", (40, 600), (30, 60, 90)).save(photos / "henley" / "narrow.png")

    summary, out = run_prepare(photos, tmp_path)

    skipped = {Path(s["path"]).name: s for s in summary["skipped"]}
    assert skipped["tall_strip.png"]["kind"] == "bad_image"
    assert "1x100000 pixels; each side must be at least 16 (data.min_side)" in skipped["tall_strip.png"]["reason"]
    assert "100000x1 pixels" in skipped["wide_strip.png"]["reason"]
    assert "aspect ratio 15.0:1 above 10:1 (data.max_aspect)" in skipped["narrow.png"]["reason"]
    assert summary["totals"]["total"] == 18
    paths = {line.split(",")[0] for line in (out / dataset.MANIFEST_FILE).read_text().splitlines()}
    assert not {"v_neck/tall_strip.png", "henley/wide_strip.png", "henley/narrow.png"} & paths

    # A looser limit lets the 40x600 photo in (and the decode cache does not serve the old verdict).
    summary, _ = run_prepare(photos, tmp_path, **{"data.max_aspect": 20})
    assert summary["totals"]["total"] == 19
    assert "narrow.png" not in {Path(s["path"]).name for s in summary["skipped"]}


@pytest.mark.parametrize("case, expected", [
    ("missing_path", "does not exist"),
    ("single_class", "at least two classes"),
    ("empty_class", "has no image files"),
    ("only_corrupt_class", "has no usable images"),
    ("tiny_class", "needs at least 3"),
])
@pytest.mark.shared_data
def test_unusable_data_sets_stop_with_a_clear_error_and_no_output(tmp_path, case, expected):
    photos = copy_photos(tmp_path / "photos", per_class=6, classes=("round_neck", "v_neck"))
    if case == "missing_path":
        photos = tmp_path / "nowhere"
    elif case == "single_class":
        shutil.rmtree(photos / "v_neck")
    elif case == "empty_class":
        (photos / "scoop_neck").mkdir()
    elif case == "only_corrupt_class":
        (photos / "scoop_neck").mkdir()
        write_bad_files(photos / "scoop_neck")
    elif case == "tiny_class":
        for extra in sorted((photos / "v_neck").glob("*.jpg"))[2:]:
            extra.unlink()

    out = tmp_path / "prepared"
    out.mkdir()
    (out / "old.txt").write_text("an earlier run's output")
    with pytest.raises(PipelineError, match=expected) as err:
        prepare(make_params(**{"data.source": "folder", "data.path": str(photos), "data.image_size": SIZE}),
                Paths(tmp_path, prepared=out, cache=tmp_path / "cache"))
    if case in ("empty_class", "only_corrupt_class"):
        assert "scoop_neck" in str(err.value)
    # the earlier output is untouched and no temporary directory is left behind
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_files_become_rgb_with_official_test_split(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "fmnist"
    folder.mkdir()
    for part, n in (("train", 60), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels)
        if part == "t10k":
            t10k_images = images

    params = make_params(**{"data.source": "fashion_mnist", "data.path": str(folder), "data.image_size": SIZE})
    summary = prepare(params, Paths(tmp_path, prepared=tmp_path / "prepared"))

    assert summary["classes"][0] == "T-shirt/top" and len(summary["classes"]) == 10
    assert summary["totals"] == {"train": 50, "validation": 10, "test": 20, "total": 80}
    images = np.load(tmp_path / "prepared" / dataset.IMAGES_FILE)
    records = dataset.read_manifest(tmp_path / "prepared")
    first_test = next(r for r in records if r["split"] == "test")
    assert first_test["path"] == "t10k-images-idx3-ubyte.gz#0"
    image = images[first_test["row"]]
    assert image.shape == (SIZE, SIZE, 3)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()  # gray as RGB
    # bright pixels of the 28x28 original stay bright after resizing
    assert abs(float(image.mean()) - float(t10k_images[0].mean())) < 20


@pytest.mark.shared_data
def test_real_fashion_mnist(tmp_path):
    params = make_params(**{"data.source": "fashion_mnist", "data.path": str(shared_path("data/fashion-mnist")()),
                            "data.image_size": SIZE})
    summary = prepare(params, Paths(tmp_path, prepared=tmp_path / "prepared"))
    assert summary["totals"]["test"] + sum(1 for s in summary["skipped"] if "t10k" in s["path"]) == 2443
    assert summary["totals"]["train"] + summary["totals"]["validation"] + summary["totals"]["test"] \
        + summary["skipped_count"] == 12443
    assert min(c["test"] for c in summary["counts"].values()) > 150


def test_bad_idx_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "fmnist"
    folder.mkdir()
    for part in ("train", "t10k"):
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", np.zeros(4))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09abc"))
    params = make_params(**{"data.source": "fashion_mnist", "data.path": str(folder), "data.image_size": SIZE})
    with pytest.raises(PipelineError, match="truncated or corrupt"):
        prepare(params, Paths(tmp_path, prepared=tmp_path / "prepared"))
    assert not (tmp_path / "prepared").exists()


def test_command_line_error_has_no_traceback(tmp_path):
    params = (REPO / "params.yaml").read_text().replace("source: synthetic", "source: folder") \
        .replace("path: data/synthetic", f"path: {tmp_path / 'missing'}")
    (tmp_path / "params.yaml").write_text(params)
    result = subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert result.stderr.startswith("error: data.path") and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "prepared").exists()


@pytest.mark.shared_data
def test_summary_is_valid_json_with_counts_per_class_and_split(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=7)
    run_prepare(photos, tmp_path)
    summary = json.loads((tmp_path / "prepared" / dataset.SUMMARY_FILE).read_text())
    assert set(summary["counts"]) == {"henley", "round_neck", "v_neck"}
    assert all(set(c) == {"train", "validation", "test", "total"} for c in summary["counts"].values())


def split_folders(root, layout):
    """A data set already split into folders: layout maps folder name -> photos per class in it."""
    source = copy_photos(root / "all", per_class=sum(layout.values()))
    for name in ("round_neck", "v_neck", "henley"):
        photos = sorted((source / name).iterdir())
        start = 0
        for folder, count in layout.items():
            (root / "data" / folder / name).mkdir(parents=True)
            for photo in photos[start:start + count]:
                shutil.copy(photo, root / "data" / folder / name / photo.name)
            start += count
    return root / "data"


def counts_by_split(summary):
    return {split: summary["totals"][split] for split in dataset.SPLITS}


@pytest.mark.shared_data
def test_train_and_validation_folders_become_train_validation_and_a_held_out_test(tmp_path):
    """clothing-style: validation/ is the held-out test split; validation for early stopping comes from train/."""
    data = split_folders(tmp_path, {"train": 10, "validation": 3})
    summary = prepare(make_params(**{"data.source": "folder", "data.path": str(data), "data.image_size": 32,
                                     "split.validation": 0.2}), Paths(tmp_path, prepared=tmp_path / "prepared"))
    assert summary["classes"] == ["henley", "round_neck", "v_neck"]
    assert counts_by_split(summary) == {"train": 24, "validation": 6, "test": 9}
    records = dataset.read_manifest(tmp_path / "prepared")
    assert all(r["path"].startswith("validation/") for r in records if r["split"] == "test")
    assert all(r["path"].startswith("train/") for r in records if r["split"] != "test")


@pytest.mark.shared_data
def test_train_validation_and_test_folders_are_kept_as_given(tmp_path):
    data = split_folders(tmp_path, {"train": 6, "validation": 2, "test": 3})
    summary = prepare(make_params(**{"data.source": "folder", "data.path": str(data), "data.image_size": 32}),
                      Paths(tmp_path, prepared=tmp_path / "prepared"))
    assert counts_by_split(summary) == {"train": 18, "validation": 6, "test": 9}
    for record in dataset.read_manifest(tmp_path / "prepared"):
        assert record["path"].split("/")[0] == record["split"]


@pytest.mark.shared_data
def test_a_class_only_in_the_held_out_folder_is_a_clear_error(tmp_path):
    data = split_folders(tmp_path, {"train": 4, "test": 2})
    (data / "test" / "polo_collar").mkdir()
    shutil.copy(next((data / "test" / "henley").iterdir()), data / "test" / "polo_collar" / "p.jpg")
    with pytest.raises(PipelineError, match=r"class folder\(s\) polo_collar that .*train does not have"):
        prepare(make_params(**{"data.source": "folder", "data.path": str(data), "data.image_size": 32}),
                Paths(tmp_path, prepared=tmp_path / "prepared"))
    assert not (tmp_path / "prepared").exists()


@pytest.mark.shared_data
def test_real_clothing_folders(tmp_path):
    clothing = shared_path("data/clothing")()
    summary = prepare(make_params(**{"data.source": "folder", "data.path": str(clothing), "data.image_size": 32}),
                      Paths(tmp_path, prepared=tmp_path / "prepared"))
    assert len(summary["classes"]) == 10 and "t-shirt" in summary["classes"]
    held_out = sum(1 for p in (clothing / "validation").rglob("*") if p.is_file())
    assert summary["totals"]["test"] + sum(
        1 for s in summary["skipped"] if s["path"].startswith("validation/")) == held_out


# --- split.group: every photo of one item in one split ------------------------------------------

NECKLINE_ITEM = r"-(\d+)-\d+\.[a-z]+$"


def photos_of_items(target, items_per_class=8, views=3):
    """Real photos saved as several views of each item (<class>/shirt-<item>-<view>.jpg): the views are the
    photo mirrored and shifted, so that they differ in pixels as real views do; plus one name that does
    not follow the pattern."""
    from PIL import Image, ImageOps

    source = copy_photos(target.parent / "originals", items_per_class)
    for class_dir in sorted(source.iterdir()):
        (target / class_dir.name).mkdir(parents=True)
        for index, photo in enumerate(sorted(class_dir.iterdir())):
            item = f"{class_dir.name}{index}".__hash__() % 10**6 + 10**6 * index
            with Image.open(photo) as image:
                image = image.convert("RGB")
                variants = [image, ImageOps.mirror(image), image.rotate(8, fillcolor="white")]
                for view in range(views):
                    variants[view].save(target / class_dir.name / f"shirt-{item}-{view + 1}.jpg", quality=92)
    only = next(iter(sorted(source.iterdir())))
    shutil.copy(next(iter(sorted(only.iterdir()))), target / only.name / "no-item-number.jpg")
    return target


@pytest.mark.shared_data
def test_split_group_keeps_every_item_in_one_split(tmp_path):
    photos = photos_of_items(tmp_path / "photos")
    summary, out = run_prepare(photos, tmp_path, **{"split.group": NECKLINE_ITEM, "split.validation": 0.2,
                                                    "split.test": 0.2})
    records = dataset.read_manifest(out)
    splits_of = {}
    for record in records:
        splits_of.setdefault(record["group"], set()).add(record["split"])
    assert all(len(splits) == 1 for splits in splits_of.values()), "an item's photos in two splits"
    assert summary["groups"] == {"pattern": NECKLINE_ITEM, "count": 3 * 8 + 1, "unmatched": 1}
    assert len(records) == 3 * 8 * 3 + 1
    # stratified as far as groups allow: every class in every split, about the asked share in test
    for name, counts in summary["counts"].items():
        assert counts["train"] > 0 and counts["validation"] > 0 and counts["test"] > 0, name
    assert 0.1 < summary["totals"]["test"] / summary["totals"]["total"] < 0.3


@pytest.mark.shared_data
def test_without_split_group_each_photo_is_its_own_item(tmp_path):
    photos = photos_of_items(tmp_path / "photos", items_per_class=4)
    summary, out = run_prepare(photos, tmp_path)
    records = dataset.read_manifest(out)
    assert [r["group"] for r in records] == [r["path"] for r in records]
    assert summary["groups"] == {"pattern": None, "count": len(records), "unmatched": 0}
    # and the views of one item do end up in different splits: the leak split.group closes
    splits_of = {}
    for record in records:
        if "shirt-" in record["path"]:
            splits_of.setdefault(record["path"].rsplit("-", 1)[0], set()).add(record["split"])
    assert any(len(splits) > 1 for splits in splits_of.values())


@pytest.mark.shared_data
def test_too_few_items_for_the_split_is_a_clear_error(tmp_path):
    photos = photos_of_items(tmp_path / "photos", items_per_class=1)
    with pytest.raises(PipelineError, match=r"split.group: only 4 items \(groups\) to split into test and the rest; "
                                            r"a 0.15 test split needs at least 7"):
        run_prepare(photos, tmp_path, **{"split.group": NECKLINE_ITEM})
    assert not (tmp_path / "prepared").exists()


# --- data.exclude ------------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_listed_photos_are_gone_from_training_and_kept_in_test(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=10)
    _, before = run_prepare(photos, tmp_path / "before")
    records = dataset.read_manifest(before)
    train = [r for r in records if r["split"] == "train"][:3]
    validation = next(r for r in records if r["split"] == "validation")
    test = next(r for r in records if r["split"] == "test")
    by_hash = next(r for r in records if r["split"] == "train" and r not in train)
    file_digest = __import__("hashlib").sha256((photos / by_hash["path"]).read_bytes()).hexdigest()
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("# photos to leave out\n\n" + "".join(f"{r['path']}\n" for r in train)
                       + f"./{validation['path']}\n{test['path']}\n{file_digest}\n"
                       + f"# keep {records[-1]['path']}\n")

    summary, out = run_prepare(photos, tmp_path / "after", **{"data.exclude": str(exclude)})

    after = dataset.read_manifest(out)
    gone = {r["path"] for r in (*train, validation, by_hash)}
    assert gone.isdisjoint(r["path"] for r in after)
    assert test["path"] in {r["path"] for r in after if r["split"] == "test"}  # reported and kept
    # Every other photo is where it was: excluding never moves a photo to another split.
    assert {r["path"]: r["split"] for r in after} == {r["path"]: r["split"] for r in records if r["path"] not in gone}
    assert sorted(s["path"] for s in summary["skipped"] if s["kind"] == "excluded") == sorted(gone)
    assert summary["skipped_by_kind"] == {"excluded": 5}
    assert summary["exclude"] == {"file": str(exclude), "listed": 6, "excluded": 5, "test_listed": [test["path"]],
                                  "test_kept": True, "not_found": [], "ignored": []}
    assert summary["totals"]["total"] == 25

    summary, out = run_prepare(photos, tmp_path / "strict", **{"data.exclude": str(exclude), "data.exclude_test": True})
    assert test["path"] not in {r["path"] for r in dataset.read_manifest(out)}
    assert summary["exclude"]["excluded"] == 6 and summary["exclude"]["test_kept"] is False


@pytest.mark.shared_data
def test_a_bad_exclude_file_gets_a_clear_error_or_warning(tmp_path, caplog):
    photos = copy_photos(tmp_path / "photos", per_class=6)
    missing_file = tmp_path / "nowhere.txt"
    with pytest.raises(PipelineError, match=f"data.exclude: {missing_file} is not found; point data.exclude at a "
                                            "text file of photo paths"):
        run_prepare(photos, tmp_path / "a", **{"data.exclude": str(missing_file)})
    binary = tmp_path / "photo-list.jpg"
    shutil.copy(next(photos.glob("*/*.jpg")), binary)  # a photo given instead of the list
    with pytest.raises(PipelineError, match=r"data.exclude: .*photo-list.jpg is not a text file \(binary data\)"):
        run_prepare(photos, tmp_path / "b", **{"data.exclude": str(binary)})
    with pytest.raises(PipelineError, match="is a folder"):
        run_prepare(photos, tmp_path / "c", **{"data.exclude": str(photos)})
    for folder in ("a", "b", "c"):
        assert not (tmp_path / folder / "prepared").exists()

    outside = tmp_path / "outside.txt"
    first = sorted(photos.glob("henley/*.jpg"))[0]
    outside.write_text(f"../elsewhere/photo.jpg\n/etc/passwd\n{first}\nhenley/deleted-photo.jpg\n")
    with caplog.at_level("WARNING", logger="fashion"):
        summary, out = run_prepare(photos, tmp_path / "d", **{"data.exclude": str(outside)})
    report = summary["exclude"]
    assert report["ignored"] == [f"line 1: '../elsewhere/photo.jpg' is outside data.path ({photos})",
                                 f"line 2: '/etc/passwd' is outside data.path ({photos})"]
    assert report["not_found"] == ["henley/deleted-photo.jpg"]
    assert report["excluded"] == 1  # the absolute path inside data.path counts
    assert f"henley/{first.name}" not in {r["path"] for r in dataset.read_manifest(out)}
    assert "'../elsewhere/photo.jpg' is outside data.path" in caplog.text
    assert "1 line(s) of" in caplog.text and "name no photo of data.path" in caplog.text


@pytest.mark.shared_data
def test_excluding_every_training_photo_of_a_class_is_a_clear_error(tmp_path):
    photos = copy_photos(tmp_path / "photos", per_class=6)
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("".join(f"henley/{p.name}\n" for p in photos.glob("henley/*.jpg")))
    with pytest.raises(PipelineError, match="class 'henley' has no training images left after data.exclude"):
        run_prepare(photos, tmp_path, **{"data.exclude": str(exclude)})
    assert not (tmp_path / "prepared").exists()
