"""The confirmed-labels file (data.confirmed): photos a person has labelled on the review queue, for training.

A CSV with a header and one row a photo:

    path,label,sha256
    ../catalog/shirt-17.jpg,v_neck,3f5a...e9

- `path`: the photo as `python -m stages.tag` wrote it in its CSV: relative to the folder the commands run
  in (the repository's root, where `dvc repro` runs its stages), or absolute.
- `label`: a class of the data set, or one of NOT_A_CLASS: the photo shows no neckline to learn from, or
  no garment. Those are kept in the file, so the queue shows the photo as answered, and not trained on.
- `sha256`: of the file's bytes when it was answered. A photo changed since is left out of training,
  with a warning: its answer was about another picture.

The queue page (fashion/serving/review_queue.py) writes the file: each answer replaces an earlier one on
the same photo, and the file is rewritten whole and atomically under a lock, so concurrent reviewers never
lose an answer. `prepare` adds the photos with a class label to the training split (never validation or
test, so that test scores stay comparable between runs), after every photo of data.path: a confirmed
photo identical to one of them is dropped, and that photo keeps its label and split.
"""

import csv
import io
import logging
from pathlib import Path

from fashion.atomic import atomic_file, locked
from fashion.data.exclusions import read_text_file
from fashion.digests import file_sha256
from fashion.errors import PipelineError

log = logging.getLogger(__name__)

COLUMNS = ("path", "label", "sha256")
NOT_A_CLASS = {"no_neckline": "no neckline visible", "not_garment": "not a garment"}


def _check_header(path, header):
    if tuple(header or ()) != COLUMNS:
        raise PipelineError(f"data.confirmed: {path} starts with {','.join(header or []) or 'nothing'!r}, not the "
                            f"header {','.join(COLUMNS)!r}; it must be the review queue's labels file (an empty "
                            f"one is the header line alone)")


def read_confirmed(path):
    """[{path, label, sha256}] of the file, in its order; a clear error for a missing or malformed file."""
    text = read_text_file(path, "data.confirmed",
                          f"point data.confirmed at the review queue's labels file, or create an empty one: echo "
                          f"{','.join(COLUMNS)} > {path}",
                          f"; it must be a CSV with the header {','.join(COLUMNS)}")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return []
    _check_header(path, rows[0])
    answers = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(COLUMNS) or not row[0] or not row[1]:
            raise PipelineError(f"data.confirmed: line {number} of {path} is {','.join(row)!r}; each line must be "
                                f"path,label,sha256 (the review queue writes them)")
        answers.append(dict(zip(COLUMNS, row)))
    return answers


def answers_by_path(path):
    """{photo path: label} as the file says now (no file: none)."""
    return {row["path"]: row["label"] for row in read_confirmed(path)} if Path(path).is_file() else {}


def record_answer(path, photo, label, sha256):
    """Write one answer into the labels file, replacing an earlier answer on `photo`; every other row stays.

    Read, changed and renamed into place whole while the lock is held: concurrent answers are applied one
    after another and none is lost; a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    with locked(path):
        rows = read_confirmed(path) if path.is_file() else []
        rows = [row for row in rows if row["path"] != photo] + [{"path": photo, "label": label, "sha256": sha256}]
        with atomic_file(path, "w") as handle:
            writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def usable_answers(answers, classes, skip):
    """The answers to train on: [(path, label)] of those with a class of the data set whose file is there and
    unchanged. The others go to skip(path, kind, reason); returns (usable, {label: count} of every answer)."""
    usable, counts = [], {}
    for row in answers:
        counts[row["label"]] = counts.get(row["label"], 0) + 1
        file = Path(row["path"])
        if row["label"] in NOT_A_CLASS:
            skip(row["path"], "confirmed_not_a_class", f"confirmed as {NOT_A_CLASS[row['label']]}: not trained on")
        elif row["label"] not in classes:
            skip(row["path"], "confirmed_unknown_class",
                 f"confirmed as {row['label']!r}, which is not a class of data.path ({', '.join(classes)}); "
                 "answer it again on the queue, or add the class folder")
        elif not file.is_file():
            skip(row["path"], "confirmed_missing", "confirmed on the review queue, but the file is gone (moved or "
                 "deleted); its line in data.confirmed can be removed")
        elif row["sha256"] and file_sha256(file) != row["sha256"]:
            skip(row["path"], "confirmed_changed", "the file changed since it was answered on the review queue; "
                 "answer it again")
        else:
            usable.append((row["path"], row["label"]))
    return usable, counts
