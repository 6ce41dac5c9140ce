"""The exclude file (data.exclude): the photos a user has decided the models must not learn from.

A plain text file, one entry a line:

    henley/shirt-123-2.jpg      a photo's path, relative to data.path (as metrics/suspects.csv names it)
    3f5a...e9 (64 hex digits)   a photo's SHA-256: of the file's bytes (`sha256sum photo.jpg`) or the
                                manifest's sha256 of its decoded pixels
    # keep henley/shirt-9-1.jpg a photo reviewed and kept: the review page writes these, prepare ignores them
    # anything else             a comment; blank lines are ignored too

`prepare` drops the listed photos from training and validation (and from test only with
data.exclude_test). `python -m stages.suspects --top 30 >> exclude.txt` and the review page of
`python -m stages.serve` add to it; the page rewrites it atomically under a lock, so that concurrent
clicks never lose a line.
"""

import csv
import logging
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from fashion.atomic import atomic_file, locked
from fashion.digests import file_sha256
from fashion.errors import PipelineError, missing

log = logging.getLogger(__name__)

KEEP_PREFIX = "# keep "
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
DECISIONS = ("exclude", "keep")


@dataclass
class Exclusions:
    """What an exclude file lists: photo paths, SHA-256 digests, the photos kept on review, and the lines
    that name no photo inside data.path (with their line numbers)."""
    paths: set = field(default_factory=set)
    hashes: set = field(default_factory=set)
    kept: set = field(default_factory=set)
    ignored: list = field(default_factory=list)

    def __len__(self):
        return len(self.paths) + len(self.hashes)


def read_text_file(path, param="data.exclude",
                   missing_advice="point data.exclude at a text file of photo paths (relative to data.path), one a "
                                  "line, e.g. an empty exclude.txt",
                   binary_advice=" (binary data); it must list photo paths (relative to data.path) or SHA-256 "
                                 "digests, one a line"):
    """The text of a file a param names (the exclude file, the labels file); a clear error for a missing or
    binary file: `{param}: {path} is not found; {missing_advice}`, `... is not a text file{binary_advice}`."""
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not found"
        raise PipelineError(f"{param}: {path} is {what}; {missing_advice}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise PipelineError(f"{param}: {path} is not a text file{binary_advice}")
    return text


def relative_photo_path(entry, data_path):
    """The entry as a normalised path relative to data.path, or None when it points outside data.path."""
    entry = entry.replace("\\", "/")
    if posixpath.isabs(entry):
        try:
            entry = Path(entry).resolve().relative_to(Path(data_path).resolve()).as_posix()
        except ValueError:
            return None
    entry = posixpath.normpath(entry)
    if entry == ".." or entry.startswith("../") or entry == ".":
        return None
    return entry


def parse(text, data_path):
    """Exclusions from the exclude file's text (see the module's docstring for the format)."""
    found = Exclusions()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if entry.startswith(KEEP_PREFIX.strip()) and entry[len(KEEP_PREFIX.strip()):].startswith(" "):
            kept = relative_photo_path(entry[len(KEEP_PREFIX):].strip(), data_path)
            if kept:
                found.kept.add(kept)
            continue
        if not entry or entry.startswith("#"):
            continue
        if SHA256.match(entry):
            found.hashes.add(entry.lower())
            continue
        relative = relative_photo_path(entry, data_path)
        if relative is None:
            found.ignored.append(f"line {number}: {entry!r} is outside data.path ({data_path})")
        else:
            found.paths.add(relative)
    found.kept -= found.paths  # excluded after it was kept: the later decision counts
    return found


def read_exclusions(path, data_path):
    return parse(read_text_file(path), data_path)


# --- the review page's writes -------------------------------------------------------------------------

def record_decision(path, photo, decision):
    """Write one review decision into the exclude file: `photo` (relative to data.path) becomes an exclude line
    or a `# keep` line, replacing an earlier decision on it; every other line stays as it was.

    The file is read, changed and renamed into place whole while the lock is held: concurrent decisions are
    applied one after another and none is lost; a reader sees the old file or the new one, never half of one.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    path = Path(path)
    with locked(path):
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        kept = [line for line in lines if line.strip() not in (photo, f"{KEEP_PREFIX}{photo}")]
        kept.append(photo if decision == "exclude" else f"{KEEP_PREFIX}{photo}")
        with atomic_file(path, "w") as handle:
            handle.write("\n".join(kept) + "\n")


def decisions(path, data_path):
    """{photo path: "exclude" | "keep"} as the exclude file says now (no file: none)."""
    path = Path(path)
    if not path.is_file():
        return {}
    found = read_exclusions(path, data_path)
    return {**{photo: "keep" for photo in found.kept}, **{photo: "exclude" for photo in found.paths}}


def read_suspects(path):
    # the suspects stage's table (metrics/suspects.csv), worst first
    """The suspects stage's rows (path, split, given, suggested, quality, reason), worst first."""
    path = Path(path)
    if not path.is_file():
        raise missing(path, "the suspects stage's table")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def exclude_listed(records, found, data, skipped):
    """Drop the photos data.exclude lists from training and validation (and from test with data.exclude_test).

    Runs after the split, so that excluding photos never moves another photo to another split: the test
    split stays the same photos, and scores before and after stay comparable. Returns (the records kept,
    a report for summary.json). Listed photos of the test split are kept unless data.exclude_test, and
    reported either way; lines that name no photo are reported with a warning.
    """
    if found is None:
        return records, None
    file_hashes = {}
    if found.hashes and data.source != "fashion_mnist":
        # The digest `sha256sum` prints: of the file's bytes (the manifest's sha256 is of the decoded pixels).
        for record in records:
            file_hashes[record["path"]] = file_sha256(Path(data.path) / record["path"])
    matched_paths, matched_hashes, kept, test_listed = set(), set(), [], []
    for record in records:
        digests = {record["sha256"], file_hashes.get(record["path"])} & found.hashes
        if record["path"] not in found.paths and not digests:
            kept.append(record)
            continue
        matched_hashes |= digests
        if record["path"] in found.paths:
            matched_paths.add(record["path"])
        if record["split"] == "test":
            test_listed.append(record["path"])
            if not data.exclude_test:
                kept.append(record)
                continue
        # Recorded without a warning per photo: the user listed them; the count is logged below.
        skipped.append({"path": record["path"], "kind": "excluded",
                        "reason": f"listed in data.exclude ({data.exclude})"})
    not_found = sorted(found.paths - matched_paths) + sorted(found.hashes - matched_hashes)
    for problem in found.ignored:
        log.warning("data.exclude: %s; it names no photo and is ignored", problem)
    if not_found:
        log.warning("data.exclude: %d line(s) of %s name no photo of data.path (e.g. %r); moved or deleted "
                    "photos can be removed from it", len(not_found), data.exclude, not_found[0])
    if test_listed:
        if data.exclude_test:
            log.warning("data.exclude: %d photo(s) of the test split dropped (data.exclude_test: true); the test "
                        "scores are not comparable with runs that kept them", len(test_listed))
        else:
            log.warning("data.exclude: %d photo(s) of the test split are listed and KEPT, so that the test split stays "
                        "the same photos (e.g. %s); data.exclude_test: true drops them too", len(test_listed),
                        test_listed[0])
    report = {"file": str(data.exclude), "listed": len(found), "excluded": len(records) - len(kept),
              "test_listed": sorted(test_listed), "test_kept": not data.exclude_test,
              "not_found": not_found, "ignored": found.ignored}
    log.info("data.exclude: %d photo(s) excluded, listed in %s", report["excluded"], data.exclude)
    return kept, report
