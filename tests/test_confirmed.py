"""The confirmed-labels file (data.confirmed): written by concurrent reviewers without a loss, read with clear
errors, and taken by `prepare` as training photos, real photos decoded, without moving the test split."""

import shutil
import subprocess
import sys
from collections import Counter

import pytest

from fashion.data import dataset
from fashion.data.confirmed import answers_by_path, read_confirmed, record_answer
from fashion.data.preparation import prepare
from fashion.digests import file_sha256
from fashion.errors import PipelineError
from fashion.paths import Paths
from tests.helpers import NECKLINES, REPO, copy_photos, make_params

HEADER = "path,label,sha256\n"


def test_an_answer_replaces_the_earlier_one_on_the_same_photo(tmp_path):
    labels = tmp_path / "confirmed.csv"
    record_answer(labels, "catalog/a.jpg", "v_neck", "aa")
    record_answer(labels, "catalog/b.jpg", "no_neckline", "bb")
    record_answer(labels, "catalog/a.jpg", "henley", "cc")  # changed my mind
    assert labels.read_text() == HEADER + "catalog/b.jpg,no_neckline,bb\ncatalog/a.jpg,henley,cc\n"
    assert answers_by_path(labels) == {"catalog/b.jpg": "no_neckline", "catalog/a.jpg": "henley"}
    assert answers_by_path(tmp_path / "none.csv") == {}


WRITER = """
import sys
from fashion.data.confirmed import record_answer
for i in range(int(sys.argv[3])):
    record_answer(sys.argv[1], f"{sys.argv[2]}/{i}.jpg", "v_neck" if i % 2 else "not_garment", str(i))
"""


def test_reviewers_answering_at_once_lose_no_answer(tmp_path):
    labels = tmp_path / "confirmed.csv"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(labels), f"reviewer{n}", "30"], cwd=REPO)
               for n in range(5)]
    assert [w.wait(timeout=120) for w in writers] == [0] * 5
    rows = read_confirmed(labels)
    assert sorted((r["path"], r["label"]) for r in rows) == sorted(
        (f"reviewer{n}/{i}.jpg", "v_neck" if i % 2 else "not_garment") for n in range(5) for i in range(30))
    assert not list(tmp_path.glob(".confirmed.csv.*"))  # no temporary copy left behind


@pytest.mark.parametrize("content, words", [
    (None, "is not found; point data.confirmed at the review queue's labels file"),
    (b"photo,class\n", "not the header 'path,label,sha256'"),
    (HEADER.encode() + b"a.jpg,v_neck\n", "line 2 of"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not a text file"),
])
def test_a_bad_labels_file_is_a_clear_error(tmp_path, content, words):
    labels = tmp_path / "confirmed.csv"
    if content is not None:
        labels.write_bytes(content)
    with pytest.raises(PipelineError, match="data.confirmed") as raised:
        read_confirmed(labels)
    assert words in str(raised.value)


@pytest.mark.shared_data
def test_prepare_trains_on_confirmed_photos_and_keeps_the_test_split(tmp_path):
    """Real photos: two answered with a class join the training split with the person's label; the others are
    left out with their reason; a photo identical to a data.path photo never moves that photo."""
    photos = copy_photos(tmp_path / "photos", per_class=8)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    spare = [sorted((NECKLINES() / name).glob("*.jpg"))[-1] for name in ("round_neck", "v_neck", "henley", "hooded")]
    for photo in spare:
        shutil.copy(photo, catalog / photo.name)
    new = sorted(catalog.iterdir())
    base = {"data.source": "folder", "data.path": str(photos), "data.image_size": 32, "data.cache": False}
    prepare(make_params(**base), Paths(tmp_path, prepared=tmp_path / "before"))
    before = dataset.read_manifest(tmp_path / "before")
    test_photo = next(r for r in before if r["split"] == "test")
    copy_of_test = catalog / "copy-of-a-test-photo.jpg"
    shutil.copy(photos / test_photo["path"], copy_of_test)
    changed = catalog / "changed.jpg"
    shutil.copy(new[3], changed)

    labels = tmp_path / "confirmed.csv"
    other = next(c for c in ("round_neck", "v_neck", "henley") if c != test_photo["label"])
    answers = [(new[0], "v_neck"), (new[1], "henley"), (new[2], "no_neckline"), (new[3], "hooded"),
               (catalog / "gone.jpg", "v_neck"), (changed, "round_neck"), (copy_of_test, other)]
    for photo, label in answers:
        record_answer(labels, str(photo), label, file_sha256(photo) if photo.exists() else "")
    changed.write_bytes(new[0].read_bytes())  # the photo changed after it was answered

    summary = prepare(make_params(**base, **{"data.confirmed": str(labels)}),
                      Paths(tmp_path, prepared=tmp_path / "after"))
    after = {r["path"]: r for r in dataset.read_manifest(tmp_path / "after")}
    for photo, label in answers[:2]:
        assert after[str(photo)]["split"] == "train" and after[str(photo)]["label"] == label
    assert {str(p) for p, _ in answers[2:]}.isdisjoint(after)
    for record in before:  # every photo of data.path keeps its label and split
        assert (after[record["path"]]["split"], after[record["path"]]["label"]) == (record["split"], record["label"])
    assert len(after) == len(before) + 2
    assert summary["confirmed"] == {"file": str(labels), "answers": 7, "trained": 2,
                                    "by_answer": dict(sorted(Counter(label for _, label in answers).items()))}
    reasons = {entry["path"]: entry["reason"] for entry in summary["skipped"]}
    assert "no neckline visible" in reasons[str(new[2])]
    assert "not a class of data.path" in reasons[str(new[3])]
    assert "the file is gone" in reasons[str(catalog / "gone.jpg")]
    assert "changed since it was answered" in reasons[str(changed)]
    assert f"identical to {test_photo['path']}" in reasons[str(copy_of_test)]
