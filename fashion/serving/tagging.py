"""The tag command (`python -m stages.tag FOLDER`): a neckline tag, and a decision, for every photo of a folder.

It runs the prediction command's own code (`load_for_prediction`, `classify`, the CSV row of `table`) over the
folder a chunk at a time, and appends each chunk's rows to a journal beside the output (`<output>.partial`,
flushed and fsynced), so a run killed half-way resumes where it stopped without classifying a finished photo
again; the journal's settings (`<output>.partial.json`: the folder, the model and its decision rule) must
match, else it starts over. At the end the CSV is written atomically, in the folder's order, and the journal
removed. Files that are not usable photos get a row with their reason in `error`, as in predict.
"""

import argparse
import csv
import io
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from fashion.atomic import atomic_file, check_writable
from fashion.errors import EXIT_USER_ERROR
from fashion.params import PARAMS_FILE, load_params
from fashion.paths import Paths
from fashion.progress import Progress
from fashion.serving.classify import KINDS, classify, last_evaluation, settings_from_params
from fashion.serving.decision import AUTO, REVIEW, UNFAMILIAR
from fashion.serving.predict import EXIT_SOME_FAILED, load_for_prediction
from fashion.serving.table import CSV_COLUMNS, csv_row, find_images

log = logging.getLogger(__name__)

CHUNK = 128  # photos classified between two journal syncs


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m stages.tag",
        description="Tag every photo of a folder (read recursively) with the trained model: a CSV with path, label, "
                    "probability, decision (auto, review or unfamiliar), top 3, novelty, located, box and error. "
                    "A run that is stopped resumes where it was. Exit status: 0 all tagged, 1 some files could not "
                    "be (their error says why), 2 nothing could be done.")
    parser.add_argument("folder", metavar="FOLDER", help="the photos to tag (sub-folders too)")
    parser.add_argument("--output", default="tags.csv", help="the CSV to write (default: tags.csv)")
    parser.add_argument("--model", choices=KINDS, help="default: the best by cross-validation (metrics/cv.json: head or finetuned), else head")
    parser.add_argument("--threshold", type=float, help="default: the model's own (models/decisions/)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    parser.add_argument("--chunk", type=int, default=CHUNK,
                        help=f"photos tagged between two syncs of the journal (default: {CHUNK}); a stopped run "
                             "redoes at most this many")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (this process) or ray (features.ray's cluster and workers; docs/tagging.md)")
    parser.add_argument("--models-dir", default=str(Paths().models), help="default: models")
    parser.add_argument("--metrics", default=str(Paths().test), help="the last evaluation (default: metrics/test.json)")
    args = parser.parse_args(argv)
    if not Path(args.folder).is_dir():
        parser.error(f"{args.folder} is not a folder; give the folder of photos to tag")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    for name in ("batch_size", "chunk"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def journal_paths(output):
    output = Path(output)
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".partial.json")


def read_journal(output, settings):
    """{path: CSV row} of the photos a stopped run finished with these settings ({} to start over)."""
    journal, record = journal_paths(output)
    if not journal.is_file() or not record.is_file():
        return {}
    try:
        same = json.loads(record.read_text()) == settings
    except ValueError:
        same = False
    if not same:
        log.warning("%s was written with other settings (folder, model or decision rule): starting over", journal)
        return {}
    with open(journal, encoding="utf-8", newline="") as handle:
        text = handle.read()
    text = text[:text.rfind("\n") + 1]  # a line cut short by the kill is done again
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        return {}
    return {row[0]: row for row in rows[1:] if len(row) == len(CSV_COLUMNS)}


def local_chunks(classifier, rule, batch_size=32, limits=None):
    """A function chunks -> iterator of (chunk index, CSV rows), classified in this process, in order."""
    extra = {} if limits is None else {"limits": limits}

    def run(chunks):
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for index, part in enumerate(chunks):
                yield index, [csv_row(r) for r in classify(classifier, part, rule, batch_size, pool=pool, **extra)]
    return run


def tag_folder(tag_chunks, entries, output, settings, chunk=CHUNK):
    """[CSV row] of every entry in order, tagged a chunk at a time by tag_chunks (local_chunks, or the Ray
    engine's), each chunk journaled as it comes back; a run that stopped is resumed where it was."""
    journal, record = journal_paths(output)
    done = read_journal(output, settings)
    todo = [entry for entry in entries if entry[0] not in done]
    if done:
        log.info("resuming: %d of %d photo(s) already tagged in %s", len(entries) - len(todo), len(entries), journal)
    else:
        with atomic_file(record) as handle:
            json.dump(settings, handle)
        with open(journal, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerow(CSV_COLUMNS)
    progress = Progress(log, "tagging", len(todo), unit="photos")
    with open(journal, "a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for _, rows in tag_chunks([todo[start:start + chunk] for start in range(0, len(todo), chunk)]):
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
            done.update((row[0], row) for row in rows)
            progress.update(len(rows))
    ordered = [done[entry[0]] for entry in entries]
    with atomic_file(output, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(ordered)
    journal.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    return ordered


def summary(rows, rule, test_decision=None):
    """The one paragraph the command prints: tagged automatically (at what expected accuracy), to review,
    unfamiliar, skipped."""
    decisions = [row[CSV_COLUMNS.index("decision")] for row in rows]
    count = {name: decisions.count(name) for name in (AUTO, REVIEW, UNFAMILIAR)}
    skipped = sum(1 for row in rows if row[CSV_COLUMNS.index("error")])
    expected = rule.expected_accuracy
    if rule.threshold is None:
        accuracy = "none: no threshold reaches the target accuracy"
    elif expected is None:
        accuracy = f"threshold {rule.threshold:g}, accuracy not measured ({rule.origin})"
    else:
        accuracy = f"expected accuracy {expected:.3f} ({rule.rule['source']}, threshold {rule.threshold:.4f})"
        test = (test_decision or {}).get("test") or {}
        if test.get("accuracy") is not None and test.get("accuracy_ci"):
            accuracy += ", {:.3f} [{:.3f}, {:.3f}] on the test split".format(test["accuracy"], *test["accuracy_ci"])
    return (f"{len(rows)} photo(s): {count[AUTO]} tagged automatically ({accuracy}); {count[REVIEW]} to review; "
            f"{count[UNFAMILIAR]} unfamiliar (unlike the training photos); {skipped} skipped (not usable photos, "
            "reasons in the error column)")


def ray_settings():
    """features.ray of params.yaml (address, workers, num_gpus), or its defaults without one."""
    if Path(PARAMS_FILE).is_file():
        return load_params().features.ray
    return SimpleNamespace(address="", workers=2, num_gpus=0)


def run(argv=None, out=sys.stdout):
    """The command without the process around it: returns the exit status."""
    args = parse_args(argv)
    check_writable(args.output, *journal_paths(args.output))
    classifier, rule, limits = load_for_prediction(args.model, args.models_dir, args.metrics, args.threshold)
    entries = find_images([args.folder])
    settings = {"folder": str(Path(args.folder).resolve()), "model": classifier.kind, "rule": rule.to_record()}
    log.info("tagging %d file(s) in %s with the %s (%s)", len(entries), args.folder, classifier.title, rule.describe())
    if args.engine == "ray":
        from fashion.serving.ray_tagging import ray_chunks

        fallback, _ = settings_from_params()
        tag_chunks = ray_chunks(ray_settings(), classifier.kind, args.models_dir, args.threshold, fallback, limits,
                                args.batch_size)
    else:
        tag_chunks = local_chunks(classifier, rule, args.batch_size, limits)
    rows = tag_folder(tag_chunks, entries, args.output, settings, args.chunk)
    evaluation = last_evaluation(classifier.kind, args.metrics) or {}
    out.write(summary(rows, rule, evaluation.get("decision")) + f"; written to {args.output}\n")
    failed = sum(1 for row in rows if row[CSV_COLUMNS.index("error")])
    if failed == len(rows):
        return EXIT_USER_ERROR
    return EXIT_SOME_FAILED if failed else 0
