"""The tag command on a real folder: one CSV row per file, the summary, bad files, and a resume after kill -9."""

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fashion.serving.predict import run as predict
from fashion.serving.tagging import journal_paths, run
from tests.corpus import write_bad_files
from tests.helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

COLUMNS = ["path", "label", "probability", "decision", "top3", "novelty", "low_confidence", "located", "locator",
           "view", "box", "error"]


def tag(root, *args):
    out = io.StringIO()
    status = run([*map(str, args), "--models-dir", str(root / "models"), "--metrics",
                  str(root / "metrics/test.json")], out=out)
    return status, out.getvalue()


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def folder(decided, tmp_path):
    """Real neckline photos, three times over under other names (108), in sub-folders, and the bad files."""
    _, root = decided
    target = tmp_path / "catalog"
    for copy in range(3):
        shutil.copytree(root / "photos", target / f"shoot{copy}")
    write_bad_files(target / "bad")
    return target


@pytest.fixture(autouse=True)
def outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_every_file_gets_a_row_like_predicts_and_one_summary(decided, folder, tmp_path):
    _, root = decided
    status, summary = tag(root, folder, "--output", tmp_path / "tags.csv", "--model", "head")
    rows = read_rows(tmp_path / "tags.csv")
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert status == 1 and len(rows) == len(files) and list(rows[0]) == COLUMNS
    failed = [row for row in rows if row["error"]]
    assert {row["path"] for row in failed} == {str(p) for p in (folder / "bad").iterdir()}
    assert all(row["decision"] == "" for row in failed)
    # the prediction command's own CSV rows, photo for photo
    out = io.StringIO()
    predict([str(folder), "--model", "head", "--format", "csv", "--models-dir", str(root / "models")], out=out)
    assert rows == list(csv.DictReader(io.StringIO(out.getvalue())))
    counts = {name: sum(row["decision"] == name for row in rows) for name in ("auto", "review", "unfamiliar")}
    assert sum(counts.values()) == len(rows) - len(failed)
    assert summary.count("\n") == 1 and summary.startswith(f"{len(rows)} photo(s): {counts['auto']} tagged "
                                                           "automatically")
    assert f"{counts['review']} to review; {counts['unfamiliar']} unfamiliar" in summary
    assert f"{len(failed)} skipped" in summary
    assert not any(path.exists() for path in journal_paths(tmp_path / "tags.csv"))


def test_a_run_killed_half_way_resumes_without_redoing_finished_photos(decided, folder, tmp_path, caplog):
    _, root = decided
    output = tmp_path / "tags.csv"
    journal, _ = journal_paths(output)
    command = [sys.executable, "-P", "-m", "stages.tag", str(folder), "--output", str(output), "--model", "head",
               "--batch-size", "1", "--chunk", "2", "--models-dir", str(root / "models")]
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (journal.is_file() and journal.read_text().count("\n") >= 9):  # header + 4 chunks of 2
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not output.exists()
    finished = journal.read_text().count("\n") - 1
    with open(journal, "rb+") as handle:  # the kill cut the last line short
        handle.truncate(os.path.getsize(journal) - 5)

    with caplog.at_level("INFO", logger="fashion"):
        status, _ = tag(root, folder, "--output", output, "--model", "head", "--chunk", "2", "--batch-size", "1")
    total = sum(1 for p in folder.rglob("*") if p.is_file())
    assert status == 1
    assert f"resuming: {finished - 1} of {total} photo(s) already tagged" in caplog.text
    assert f"tagging: {total - finished + 1:,} / {total - finished + 1:,} photos" in caplog.text  # only the rest
    resumed = read_rows(output)
    # the same as one run through (at the same batch size: another one moves the last digits of the floats)
    status, _ = tag(root, folder, "--output", tmp_path / "again.csv", "--model", "head", "--batch-size", "1")
    assert resumed == read_rows(tmp_path / "again.csv")
    assert not journal.exists()


def test_a_journal_of_other_settings_is_not_resumed(decided, folder, tmp_path, caplog):
    _, root = decided
    output = tmp_path / "tags.csv"
    journal, record = journal_paths(output)
    record.write_text('{"folder": "elsewhere"}')
    journal.write_text(",".join(COLUMNS) + "\n" + "x.jpg,v_neck,0.99,auto,,,,,,\n")
    with caplog.at_level("WARNING", logger="fashion"):
        tag(root, folder, "--output", output, "--model", "head")
    assert "starting over" in caplog.text
    assert "x.jpg" not in output.read_text()


def test_bad_arguments_are_clear(decided, tmp_path, capsys):
    _, root = decided
    with pytest.raises(SystemExit) as exit_info:
        tag(root, tmp_path / "nowhere")
    assert exit_info.value.code == 2 and "is not a folder" in capsys.readouterr().err


def test_the_ray_engine_writes_the_same_csv(decided, folder, tmp_path):
    """Two Ray actors on this machine (features.ray's defaults), chunks back in any order: the same file."""
    _, root = decided
    tag(root, folder, "--output", tmp_path / "local.csv", "--model", "head", "--chunk", "16")
    status, summary = tag(root, folder, "--output", tmp_path / "ray.csv", "--model", "head", "--chunk", "16",
                          "--engine", "ray")
    assert status == 1 and "written to" in summary
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
