"""Outputs are complete or absent: a run killed with SIGKILL leaves its temporary folder behind, and
the next run of that stage removes it; a model saved by an older version is a clear error."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fashion.errors import PipelineError
from fashion.features.extraction import extract
from fashion.features.store import read_info
from fashion.paths import Paths
from fashion.serving.classify import load_classifier
from tests.helpers import MOBILENET_025, REPO, prepared_photos

# A real process that starts writing an output folder through atomic_dir and is then killed outright.
WRITER = """
import sys, time
from pathlib import Path
from fashion.atomic import atomic_dir
with atomic_dir(Path(sys.argv[1])) as tmp:
    (tmp / "train.npz").write_bytes(b"half")
    print(tmp, flush=True)
    time.sleep(600)
"""


def killed_mid_write(final):
    """The temporary folder a SIGKILLed writer of `final` left behind."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(final)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    leftover = writer.stdout.readline().strip()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    return leftover


@pytest.mark.shared_data
def test_the_next_extract_removes_what_a_killed_one_left(tmp_path):
    params, prepared = prepared_photos(tmp_path, per_class=4, size=32, **{
        "features.weights": str(MOBILENET_025()), "features.alpha": 0.25})
    features = tmp_path / "features"
    leftover = killed_mid_write(features)
    assert leftover.endswith(".features.tmp-" + leftover.rsplit("-", 1)[1])
    assert (tmp_path / leftover).is_dir() and not features.exists()  # nothing half-written in place

    extract(params, Paths(tmp_path, prepared=prepared, features=features))

    assert not (tmp_path / leftover).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".cache") == ["features", "photos", "prepared"]
    assert read_info(features)["images"] == 12


def test_a_running_writers_temporary_folder_is_left_alone(tmp_path):
    from fashion.atomic import atomic_dir

    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "out")], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        busy = writer.stdout.readline().strip()
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "done").write_text("yes")
        assert (tmp_path / busy).is_dir()  # another live process is still writing there
        assert (tmp_path / "out" / "done").read_text() == "yes"
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_model_saved_by_an_older_version_asks_for_a_new_run(trained, tmp_path):
    _, root = trained
    models = tmp_path / "models"
    models.mkdir()
    for kind in ("cnn", "head"):
        (models / f"{kind}.keras").write_bytes((root / "models" / f"{kind}.keras").read_bytes())
        info = json.loads((root / "models" / f"{kind}.json").read_text())
        # The layout before the recipes: image size, resize and region as loose keys.
        preprocessing = info.pop("preprocessing")
        info.update(preprocessing)
        (models / f"{kind}.json").write_text(json.dumps(info))
        with pytest.raises(PipelineError, match=rf"{kind}.json was written by an older version of the pipeline "
                                                r"\(no complete 'preprocessing' record\); run `dvc repro` again"):
            load_classifier(kind, models)


def test_temporary_names_are_cleaned_only_for_their_own_output(tmp_path):
    from fashion.atomic import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    time.sleep(0.1)
    for name in (f".features.tmp-{dead}", f".features.old-{dead}", f".head.keras.tmp-{dead}.keras",
                 f".features.npz.tmp-{dead}", ".features.tmp-notapid", "features-notes.txt"):
        (tmp_path / name).write_text("x")
    remove_stale_temporaries(tmp_path / "features")
    remove_stale_temporaries(tmp_path / "head.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".features.npz.tmp-{dead}", ".features.tmp-notapid",
                                                          "features-notes.txt"]


# --- outputs that cannot be written ------------------------------------------------------------------
# Tests may run as root, for whom a read-only folder is writable; a folder whose place is taken by a
# file blocks everyone, so that is the unwritable output here (and a read-only folder when not root).

def test_an_output_under_a_file_is_a_clear_error_before_anything_is_written(tmp_path):
    from fashion.atomic import check_writable

    (tmp_path / "models").write_text("a file where the models folder should be")
    with pytest.raises(PipelineError) as caught:
        check_writable(tmp_path / "plots/head/history.csv", tmp_path / "models/head.keras")
    message = str(caught.value)
    assert message.startswith(f"cannot write {tmp_path / 'models/head.keras'} ({tmp_path / 'models'} is a file, "
                              "not a folder)")
    assert "run again" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no folder made, no probe file left
    check_writable(tmp_path / "plots/head/history.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_clear_error(tmp_path):
    from fashion.atomic import check_writable

    (tmp_path / "models").mkdir()
    (tmp_path / "models").chmod(0o555)
    try:
        with pytest.raises(PipelineError, match=r"cannot write .*head.keras \(.*models: Permission denied\)"):
            check_writable(tmp_path / "models/head.keras")
    finally:
        (tmp_path / "models").chmod(0o755)


def test_train_head_that_cannot_write_its_model_stops_at_once_with_one_line_and_no_outputs(tmp_path):
    """As `dvc repro` runs it: the stage in its own process, in a folder laid out like the repository."""
    import yaml

    from fashion.data.recipes import BackboneRecipe, Preprocessing
    from tests.helpers import make_params
    from tests.test_resample import write_features

    counts = {"train": [30, 30, 30], "validation": [8, 8, 8], "test": [8, 8, 8]}
    write_features(tmp_path / "data/features", counts)
    info = json.loads((tmp_path / "data/features/info.json").read_text())
    info.update(preprocessing=Preprocessing(32).to_record(),
                backbone=BackboneRecipe("mobilenet", "none", alpha=0.25).to_record())
    (tmp_path / "data/features/info.json").write_text(json.dumps(info))
    write_features(tmp_path / "data/resampled", {"train": counts["train"]})
    params = make_params(**{"head.epochs": 300, "head.patience": 300})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump()))
    (tmp_path / "models").write_text("not a folder")

    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "stages.train_head"], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    seconds = time.monotonic() - started

    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: cannot write models/head.keras (models is a file, not a folder); make models a "
                      "writable folder (or free space on its disk) and run again"]
    assert "Traceback" not in result.stderr and "Epoch" not in result.stdout + result.stderr
    # DVC may have removed the stage's earlier outputs before it ran: the way back is named
    assert "`dvc checkout train_head` brings back the ones dvc.lock records" in result.stderr
    assert not (tmp_path / "plots/head/history.csv").exists()
    print(f"train_head stopped after {seconds:.1f} s (Python and TensorFlow start-up included)")
