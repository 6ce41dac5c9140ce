"""data.locate: auto on real neckline photos with the real BlazeFace and BlazePose models: which locator
places each photo's box (face, pose, closeup, none), the back views, and both in the manifest and in
every prediction."""

import csv
import dataclasses
import io
import shutil

import numpy as np
import pytest

from fashion.data import dataset, locate, pose, tflite
from fashion.data.images import decode_rgb
from fashion.data.preparation import prepare
from fashion.data.recipes import Preprocessing
from fashion.paths import Paths
from fashion.serving.classify import Classifier, classify
from fashion.serving.table import render
from tests.helpers import NECKLINES, make_params

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

SIZE = 48
BOX = {"top": 0.9, "bottom": 2.2, "half_width": 1.1}
UPPER = {"top": 0.0, "bottom": 0.6, "left": 0.0, "right": 1.0}
AUTO = Preprocessing(SIZE, "crop", UPPER, "auto", BOX)
# Looked at by eye: a front view with the wearer's face; a back view (no face found, the head turned
# away); close-ups with the head cut off (a placket, and a sleeve and chest cut at the chin).
FRONT = "henley/11469516423051-MR-BUTTON-Yellow-Structured-Fit-Henley-T-Shirt-5191469516421144-4.jpg"
BACK = "henley/11505807234505-HERENOW-Men-Grey-Melange-Self-Design-Henley-Neck-T-shirt-2741505807234227-3.jpg"
CLOSEUPS = ("henley/11509704659897-Peter-England-Casuals-Men-Black-Solid-Henley-Neck-T-shirt-1481509704659794-4.jpg",
            "henley/11486635212168-sOliver-Men-Pink-Solid-Henley-Neck-T-Shirt-5411486635212057-5.jpg")
# More views labelled by eye (a random sample of the neckline photos, looked at on a contact sheet).
BACK_VIEWS = ("round_neck/11524562740319-Moda-Rapido-Men-Black-Printed-Round-Neck-Longline-T-shirt-5361524562740268-4.jpg",
              "polo_collar/11514970597873-Lee-Cooper-Men-Black-Solid-Polo-Collar-T-shirt-2231514970597868-4.jpg",
              "round_neck/b05f4449-c372-4d6a-938b-50a10cd3e06f1527331607649-Harvard-Men-Red-Striped-Round-Neck-T-shirt-9911527331605848-5.jpg",
              "polo_collar/11525688012110-Splash-Men-Red-Solid-Polo-Collar-T-shirt-5291525688011984-3.jpg")
FRONT_VIEWS = ("round_neck/11523947345100-Kook-N-Keech-Men-Black-Solid-Round-Neck-T-shirt-381523947344981-3.jpg",
               "hooded/11521455276475-Steel-GreyBlack-Sleeveless-Hooded-T-shirt-2491521455276301-3.jpg",
               "henley/11493709770159-Tommy-Hilfiger-Men-Navy-Blue-Solid-Henley-Neck-T-shirt-6271493709769991-4.jpg",
               "v_neck/11470901009630-Fort-Collins-Men-White-Printed-V-Neck-T-Shirt-4131470901009464-5.jpg")


def rgb_of(relative):
    return decode_rgb(NECKLINES() / relative)


def test_a_front_view_is_placed_by_the_face_and_said_front():
    rgb = rgb_of(FRONT)
    where = locate.locate(rgb, AUTO)
    assert (where.located, where.locator, where.view) == (True, "face", "front")
    # the same box as data.locate face: auto only adds what face cannot find
    assert where.region == locate.locate(rgb, dataclasses.replace(AUTO, locate="face")).region


def test_a_back_view_is_placed_by_the_shoulders_and_said_back():
    rgb = rgb_of(BACK)
    height, width = rgb.shape[:2]
    where = locate.locate(rgb, AUTO)
    assert (where.located, where.locator, where.view) == (True, "pose", "back")
    found = pose.find_pose(rgb)
    (lx, ly), (rx, ry) = found.shoulders
    assert lx < rx  # the wearer's left shoulder on the photo's left: the back is to the camera
    # the box spans the shoulders' middle, between the head and the shoulders' line
    assert where.left * width < (lx + rx) / 2 < where.right * width
    assert where.top * height < (ly + ry) / 2 < where.bottom * height + 0.5 * found.shoulder_width
    assert where.bottom - where.top < 0.5


@pytest.mark.parametrize("relative", CLOSEUPS)
def test_a_closeup_with_the_head_cut_off_gets_the_top_band(relative):
    where = locate.locate(rgb_of(relative), AUTO)
    assert (where.located, where.locator, where.view) == (True, "closeup", None)
    assert where.region == locate.CLOSEUP_REGION and where.bottom < UPPER["bottom"]


def test_a_blank_photo_gets_no_box_and_keeps_the_region():
    blank = np.full((120, 90, 3), 255, dtype=np.uint8)
    assert locate.locate(blank, AUTO) == locate.Location(**UPPER, located=False, locator="none", view=None)


@pytest.mark.parametrize("relative,view", [(p, "back") for p in BACK_VIEWS] + [(p, "front") for p in FRONT_VIEWS])
def test_the_view_matches_the_eye(relative, view):
    assert locate.locate(rgb_of(relative), AUTO).view == view


def test_the_pose_landmarks_lie_on_the_wearer():
    """The detector's region, rotated and cropped, gives landmarks in the photo's pixels: the nose above the
    shoulders, the shoulders above the hips, the face between the shoulders."""
    rgb = rgb_of(FRONT)
    found = pose.find_pose(rgb)
    assert found is not None and found.presence > 0.9
    points = found.points
    nose, hips = points[pose.NOSE], (points[23] + points[24]) / 2
    shoulders = (points[pose.LEFT_SHOULDER] + points[pose.RIGHT_SHOULDER]) / 2
    assert nose[1] < shoulders[1] < hips[1]
    assert points[pose.RIGHT_SHOULDER][0] < nose[0] < points[pose.LEFT_SHOULDER][0]  # facing the camera
    assert 0.2 < found.shoulder_width / rgb.shape[1] < 0.6
    assert found.visibility[pose.LEFT_SHOULDER] > 0.9


def test_the_detectors_anchors_match_their_outputs():
    assert [len(tflite.anchors(model)) for model in (tflite.POSE_DETECTOR, tflite.FACE_SHORT_RANGE,
                                                      tflite.FACE_FULL_RANGE)] == [2254, 896, 2304]


def test_a_missing_model_file_is_a_clear_error(monkeypatch, tmp_path):
    from fashion.errors import PipelineError

    monkeypatch.setattr(tflite, "MODELS_DIR", tmp_path)
    with pytest.raises(PipelineError, match="pose_detection.tflite is missing: the neckline locator needs MediaPipe's model files"):
        tflite.model_file("pose_detection.tflite")


@pytest.fixture(scope="module")
def auto_photos(tmp_path_factory):
    """The photos above prepared with data.locate: auto, as class folders front/, back/ and closeup/."""
    root = tmp_path_factory.mktemp("auto")
    chosen = {"front": [FRONT, *FRONT_VIEWS[:2]], "back": [BACK, *BACK_VIEWS[:2]], "closeup": [*CLOSEUPS, CLOSEUPS[0]]}
    for name, files in chosen.items():
        (root / "photos" / name).mkdir(parents=True)
        for i, relative in enumerate(files):
            shutil.copy(NECKLINES() / relative, root / "photos" / name / f"{i}-{relative.rsplit('/', 1)[1]}")
    # the third close-up is the first one mirrored: a different file, the same kind of photo
    third = root / "photos" / "closeup" / f"2-{CLOSEUPS[0].rsplit('/', 1)[1]}"
    from PIL import Image
    Image.open(third).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(third, quality=95)
    params = make_params(**{"data.source": "folder", "data.path": str(root / "photos"), "data.image_size": SIZE,
                            "data.resize": "crop", "data.region": UPPER, "data.locate": "auto", "data.locate_box": BOX,
                            "split.validation": 0.2, "split.test": 0.2})
    summary = prepare(params, Paths(root, prepared=root / "prepared", cache=root / "cache"))
    return root, summary


def test_the_manifest_and_summary_carry_locator_and_view(auto_photos):
    root, summary = auto_photos
    records = dataset.read_manifest(root / "prepared")
    by_class = {name: {(r["locator"], r["view"]) for r in records if r["label"] == name}
                for name in ("front", "back", "closeup")}
    assert by_class["front"] == {("face", "front")} and by_class["closeup"] == {("closeup", "")}
    # a back view: BlazeFace may find the cheek and ear (face), else the shoulders place the box (pose)
    assert {view for _, view in by_class["back"]} == {"back"} and ("pose", "back") in by_class["back"]
    assert all(r["located"] == "true" for r in records)
    assert summary["views"]["total"] == {"back": 3, "front": 3, "unknown": 3}
    assert summary["locators"]["closeup"] == {"closeup": 3}
    assert summary["preprocessing"]["locate"] == "auto"


def test_predict_gives_the_locator_and_view_prepare_stored(auto_photos):
    root, summary = auto_photos
    images = np.load(root / "prepared" / dataset.IMAGES_FILE)
    classifier = Classifier("cnn", None, {"classes": summary["classes"]},
                            Preprocessing.from_artifact(summary, "summary.json"))
    records = dataset.read_manifest(root / "prepared")
    for record in records:
        image, where = classifier.read(root / "photos" / record["path"])
        assert np.array_equal(image, images[record["row"]]), record["path"]
        assert (where.locator, where.view or "") == (record["locator"], record["view"])

    # the result records of predict and serve, and predict's CSV and table, from a small untrained Keras
    # model (what is tested here is the locator's part of the records, not the classes)
    import keras

    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(len(summary["classes"]), activation="softmax")])
    answering = Classifier("cnn", model, {"classes": summary["classes"]}, classifier.preprocessing)
    entries = [(r["path"], root / "photos" / r["path"], None) for r in records]
    results = classify(answering, entries, threshold=0.5)
    assert [(r["locator"], r["view"] or "") for r in results] == [(r["locator"], r["view"]) for r in records]
    csv_rows = list(csv.DictReader(io.StringIO(render(results, "csv"))))
    assert list(csv_rows[0])[-5:] == ["located", "locator", "view", "box", "error"]
    assert sum(row["view"] == "back" for row in csv_rows) == 3
    table = render(results, "table")
    assert table.count("back view") == 3 + 1  # one note per back view, and the legend
