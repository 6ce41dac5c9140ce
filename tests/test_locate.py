"""The neckline locator (data.locate: face) on real neckline photos with the real face detector (BlazeFace;
MTCNN beside it). data.locate: auto, BlazePose and the view: tests/test_locate_auto.py."""

import dataclasses
import shutil

import numpy as np
import pytest
from PIL import Image

from fashion.data import dataset, decode_cache, faces, locate
from fashion.data.images import decode_rgb, load_located
from fashion.data.preparation import prepare
from fashion.data.recipes import Preprocessing
from fashion.errors import PipelineError
from fashion.paths import Paths
from fashion.serving.classify import Classifier
from tests.helpers import NECKLINES, make_params, override

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

SIZE = 48
BOX = {"top": 0.8, "bottom": 2.6, "half_width": 1.4}
UPPER = {"top": 0.0, "bottom": 0.6, "left": 0.0, "right": 1.0}
LOCATED = Preprocessing(SIZE, "crop", UPPER, "face", BOX)
# Front views where both face detectors find the wearer's face, and photos with no face in them (looked at by eye):
# a back view, a close-up of the collar, and a photo cut off below the eyes.
FACES = ("henley/11469516423051-MR-BUTTON-Yellow-Structured-Fit-Henley-T-Shirt-5191469516421144-4.jpg",
         "hooded/11502341822504-Roadster-Men-Blue-Printed-Hood-T-shirt-7891502341822257-2.jpg",
         "henley/2e19346d-61f0-476e-8c48-0b650eb1fbd51535095761473-WROGN-Men-Blue-Striped-Henley-Neck-T-shirt-121535095759350-3.jpg")
NO_FACE = ("henley/11505807234505-HERENOW-Men-Grey-Melange-Self-Design-Henley-Neck-T-shirt-2741505807234227-3.jpg",
           "henley/11509704659897-Peter-England-Casuals-Men-Black-Solid-Henley-Neck-T-shirt-1481509704659794-4.jpg",
           "henley/11486635212168-sOliver-Men-Pink-Solid-Henley-Neck-T-Shirt-5411486635212057-5.jpg")


def photo(relative):
    return NECKLINES() / relative


def shown(relative):
    """Where the located_photos fixture puts a photo: under faces/ or no_face/."""
    return f"{'faces' if relative in FACES else 'no_face'}/{relative.rsplit('/', 1)[1]}"


def detected_face(rgb, detector=locate.FACE_DETECTOR):
    return locate.choose_face(faces.detect_faces(rgb, detector), faces.MIN_CONFIDENCE[detector])


@pytest.mark.parametrize("relative", FACES)
def test_a_face_is_found_and_the_box_lies_under_it(relative):
    rgb = decode_rgb(photo(relative))
    height, width = rgb.shape[:2]
    face = detected_face(rgb)
    assert face is not None
    x, y, w, h, confidence = face
    assert confidence >= faces.MIN_CONFIDENCE[locate.FACE_DETECTOR] and 10 < w < width / 2

    where = locate.locate(rgb, LOCATED)
    assert where.located is True and where.locator == "face" and where.view is None  # face alone: no view
    # the box starts below the eyes and ends well below the chin, centred on the face
    assert where.top * height == pytest.approx(y + 0.8 * h, abs=1)
    assert where.bottom * height == pytest.approx(min(height, y + 2.6 * h), abs=1)
    assert (where.left + where.right) / 2 * width == pytest.approx(x + w / 2, abs=0.2 * w + 1) or \
        where.left == 0 or where.right == 1  # clipped at a side
    assert where.bottom * height > y + h  # below the face
    # what the model sees is that box, not the fixed region
    image, _ = load_located(photo(relative), LOCATED)
    plain, _ = load_located(photo(relative), dataclasses.replace(LOCATED, locate="none", locate_box=None))
    assert np.abs(image.astype(int) - plain.astype(int)).mean() > 5


@pytest.mark.parametrize("relative", FACES)
def test_blazeface_finds_mtcnns_face_in_the_same_units(relative):
    """The full-range BlazeFace's boxes come in MTCNN's units (faces.AS_MTCNN), so data.locate_box cuts the same
    crop with either. (The short-range model, made for faces within 2 m, misplaces the small face of the
    first full-body photo: it is measured beside them, not used.)"""
    rgb = decode_rgb(photo(relative))
    reference, face = detected_face(rgb, "mtcnn"), detected_face(rgb, "blazeface_full")
    assert face is not None
    assert face[3] == pytest.approx(reference[3], rel=0.2) and face[2] == pytest.approx(reference[2], rel=0.25)
    assert face[1] == pytest.approx(reference[1], abs=0.15 * reference[3])
    assert face[0] + face[2] / 2 == pytest.approx(reference[0] + reference[2] / 2, abs=0.25 * reference[2])  # a turned face


@pytest.mark.parametrize("relative", NO_FACE)
def test_a_photo_without_a_face_falls_back_to_the_region_and_is_marked(relative):
    where = locate.locate(decode_rgb(photo(relative)), LOCATED)
    assert where.located is False and where.locator == "none" and where.region == UPPER


def test_a_generated_image_has_no_face_and_locate_none_looks_for_none():
    blank = np.full((120, 90, 3), 255, dtype=np.uint8)
    assert locate.locate(blank, LOCATED) == locate.Location(**UPPER, located=False, locator="none")
    unlocated = dataclasses.replace(LOCATED, locate="none", locate_box=None)
    assert locate.locate(blank, unlocated) == locate.Location(**UPPER, located=None)
    tiny = np.zeros((5, 3, 3), dtype=np.uint8)  # smaller than the detector's smallest window
    assert locate.locate(tiny, LOCATED).located is False


@pytest.mark.parametrize("face,expected", [
    # a face in the middle: the whole box fits
    ((40, 20, 20, 30, 0.99), (44.0, 98.0, 22.0, 78.0)),
    # a face at the left border: clipped at 0
    ((0, 20, 20, 30, 0.99), (44.0, 98.0, 0.0, 38.0)),
    # a face low in the photo: the box leaves it at the bottom and is clipped there
    ((40, 80, 20, 30, 0.99), (104.0, 120.0, 22.0, 78.0)),
])
def test_a_box_that_leaves_the_photo_is_clipped(face, expected):
    assert locate.box_under_face(face, BOX, 120, 100) == pytest.approx(expected)


def test_a_face_at_the_bottom_edge_or_a_sliver_leaves_no_box():
    assert locate.box_under_face((40, 115, 20, 30, 0.99), BOX, 120, 100) is None  # box starts below the photo
    assert locate.box_under_face((40, 20, 2, 3, 0.99), BOX, 120, 100) is None  # a 5 px face: a 5 px box


def test_the_largest_confident_face_is_taken():
    wearer, print_on_shirt, doubtful = (50, 10, 30, 40, 0.99), (60, 80, 12, 15, 0.995), (0, 0, 80, 90, 0.5)
    assert locate.choose_face([print_on_shirt, wearer, doubtful], 0.9) == wearer
    assert locate.choose_face([doubtful], 0.9) is None and locate.choose_face([], 0.9) is None


def test_locate_params_change_the_prepare_fingerprint():
    def fingerprint(**overrides):
        params = make_params(**{"data.source": "folder", "data.path": "photos", **overrides})
        data = params.data
        return decode_cache.fingerprint(Preprocessing.from_params(params).to_record(), data.max_pixels,
                                        data.min_side, data.max_aspect)

    plain = fingerprint()
    assert fingerprint(**{"data.locate": "face"}) != plain
    assert fingerprint(**{"data.locate": "auto"}) not in (plain, fingerprint(**{"data.locate": "face"}))
    assert fingerprint(**{"data.locate": "face", "data.locate_box.bottom": 2.5}) != fingerprint(**{"data.locate": "face"})
    assert fingerprint(**{"data.locate": "face", "data.locate_box.half_width": 1.2}) != fingerprint(**{"data.locate": "face"})
    # without the locator its box changes nothing: no needless re-decoding
    assert fingerprint(**{"data.locate_box.bottom": 2.5}) == plain


def test_another_locator_is_another_feature_cache():
    """The manifest's sha256 is of the whole photo: the same photo cut by another locator must not find the
    features of the first one's crop."""
    from fashion.features.feature_cache import fingerprint

    backbone = {"model": "mobilenet", "weights": "none", "alpha": 0.25, "precision": "float32", "mirror": False, "seed": 0}
    recipe = LOCATED.to_record()
    assert len({fingerprint(backbone, recipe), fingerprint(backbone, recipe, locate.version("face")),
                fingerprint(backbone, recipe, locate.version("auto"))}) == 3
    assert locate.version("none") is None and "rules" in locate.version("face")


@pytest.mark.parametrize("overrides,message", [
    ({"data.locate": "pose"}, "'data.locate' is 'pose'; allowed values: none, face, auto"),
    ({"data.locate_box.top": -0.5}, "'data.locate_box.top' is -0.5; it must be between 0 and 20"),
    ({"data.locate_box.half_width": 0}, "'data.locate_box.half_width' is 0; it must be"),
    ({"data.locate_box.top": 2.0, "data.locate_box.bottom": 1.5},
     "'data.locate_box.bottom' (1.5) must be greater than 'data.locate_box.top' (2)"),
    ({"data.locate_box.top": 0.0, "data.locate_box.bottom": 0.9},
     "'data.locate_box.bottom' is 0.9, so the box ends inside or above the face"),
])
def test_bad_locate_params_get_clear_errors(overrides, message):
    with pytest.raises(PipelineError) as err:
        make_params(**overrides)
    assert message in str(err.value)


@pytest.fixture(scope="module")
def located_photos(tmp_path_factory):
    """A folder of real neckline photos prepared with data.locate: face: class faces/ holds FACES and
    class no_face/ NO_FACE (three each, so that every split gets one)."""
    root = tmp_path_factory.mktemp("located")
    for relative in (*FACES, *NO_FACE):
        target = root / "photos" / shown(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo(relative), target)
    params = make_params(**{"data.source": "folder", "data.path": str(root / "photos"), "data.image_size": SIZE,
                            "data.resize": "crop", "data.region": UPPER, "data.locate": "face", "data.locate_box": BOX,
                            "split.validation": 0.2, "split.test": 0.2})
    summary = prepare(params, Paths(root, prepared=root / "prepared", cache=root / "cache"))
    return params, root, summary


def test_prepare_records_the_box_and_whether_a_face_was_found(located_photos):
    _, root, summary = located_photos
    records = {r["path"]: r for r in dataset.read_manifest(root / "prepared")}
    assert {path for path, r in records.items() if r["located"] == "true"} == set(map(shown, FACES))
    assert {path for path, r in records.items() if r["located"] == "false"} == set(map(shown, NO_FACE))
    assert {r["locator"] for r in records.values() if r["located"] == "false"} == {"none"}
    assert {r["locator"] for r in records.values() if r["located"] == "true"} == {"face"}
    assert {r["view"] for r in records.values()} == {""}  # data.locate face does not look for the view
    for relative in NO_FACE:
        assert {side: float(records[shown(relative)][f"box_{side}"]) for side in UPPER} == UPPER
    for relative in FACES:
        box = {side: float(records[shown(relative)][f"box_{side}"]) for side in UPPER}
        assert box["top"] > 0.05 and box["bottom"] > box["top"] and box != UPPER
    assert summary["located"] == {"faces": {"located": 3, "not_located": 0},
                                  "no_face": {"located": 0, "not_located": 3},
                                  "total": {"located": 3, "not_located": 3}}
    assert summary["locators"]["total"] == {"face": 3, "none": 3}
    assert summary["locator_version"] == locate.version("face")
    assert summary["locator_version"].startswith(f"face_detection_full_range_sparse.tflite {faces.BLAZEFACE['blazeface_full'].digest()}")
    assert summary["preprocessing"]["locate"] == "face" and summary["preprocessing"]["locate_box"] == BOX


def test_predict_gets_exactly_the_crop_prepare_stored(located_photos):
    _, root, summary = located_photos
    images = np.load(root / "prepared" / dataset.IMAGES_FILE)
    # what stages.predict and stages.serve read a photo with: the model's recipe, copied from the summary
    classifier = Classifier("cnn", None, {"classes": summary["classes"]},
                            Preprocessing.from_artifact(summary, "summary.json"))
    for record in dataset.read_manifest(root / "prepared"):
        image, where = classifier.read(root / "photos" / record["path"])
        assert np.array_equal(image, images[record["row"]]), record["path"]
        assert str(where.located).lower() == record["located"] and where.locator == record["locator"]
        assert where.to_record()["box"] == {side: float(record[f"box_{side}"]) for side in UPPER}


def test_added_photos_run_the_detector_on_the_new_ones_only(located_photos, tmp_path, monkeypatch):
    params, root, _ = located_photos
    photos = tmp_path / "photos"
    shutil.copytree(root / "photos", photos)
    cache = tmp_path / "cache"
    params = override(params, {"data.path": str(photos)})
    prepare(params, Paths(tmp_path, prepared=tmp_path / "first", cache=cache))
    extra = photos / "faces" / "extra-copy-mirrored.jpg"
    Image.open(photo(FACES[0])).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(extra, quality=95)

    detected = []
    real_detect = faces.detect_faces
    monkeypatch.setattr(faces, "detect_faces", lambda rgb, detector: detected.append(rgb.shape) or real_detect(rgb, detector))
    prepare(params, Paths(tmp_path, prepared=tmp_path / "second", cache=cache))
    assert len(detected) == 1  # the new photo only; the others came from the decode cache
    records = {r["path"]: r for r in dataset.read_manifest(tmp_path / "second")}
    assert records["faces/extra-copy-mirrored.jpg"]["located"] == "true"
    first = {r["path"]: r for r in dataset.read_manifest(tmp_path / "first")}
    for path, record in first.items():  # cached entries give the same boxes as decoding them
        assert {k: records[path][k] for k in dataset.LOCATION_COLUMNS} == {k: record[k] for k in dataset.LOCATION_COLUMNS}


def test_without_the_locator_prepare_never_loads_the_detector(tmp_path):
    """The embedded default keeps data.locate: none, and its run pays nothing for the locator."""
    import subprocess
    import sys

    from tests.helpers import REPO, copy_photos

    photos = copy_photos(tmp_path / "photos", per_class=3)
    script = ("import sys; from fashion.data.preparation import prepare; from fashion.paths import Paths; "
              "from tests.helpers import make_params; "
              f"prepare(make_params(**{{'data.source': 'folder', 'data.path': {str(photos)!r}, 'data.image_size': 32}}), "
              f"Paths({str(tmp_path)!r})); "
              "print('mtcnn' in sys.modules, 'tensorflow' in sys.modules, 'fashion.data.tflite' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.split()[-3:] == ["False", "False", "False"]
