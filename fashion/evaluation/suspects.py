"""Suspect labels (stage `suspects`): the train and validation photos whose label looks wrong.

Confident learning (cleanlab's `find_label_issues`) over the crossval stage's out-of-fold probabilities:
every photo was predicted by a model that never saw it, so a confident prediction of another class is
evidence against its label. cleanlab estimates how often each class is given for each other one and flags
that many of the least likely labels; each flagged photo gets its label-quality score (the out-of-fold
probability of its given label: 0 worst) and the class the models suggest instead. Where the manifest has
a `located` column (the neckline locator, data.locate), a photo whose neckline was not found is flagged
too. Test photos are never looked at: their labels are what the scores are measured against.
"""

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np

from fashion.atomic import atomic_file
from fashion.data import dataset
from fashion.data.exclusions import decisions, read_suspects
from fashion.errors import PipelineError, missing, outdated
from fashion.params import load_params
from fashion.paths import Paths

log = logging.getLogger(__name__)

GALLERY_SIZE = 24
MISLABELLED = "likely mislabelled"
NOT_LOCATED = "no neckline located"
COLUMNS = ("path", "split", "given", "suggested", "quality", "reason")


def read_predictions(path, model=None):
    """(paths, given labels as class names, classes, (n, classes) probabilities) from crossval's predictions:
    metrics/cv_predictions.csv (one model's), or one `model`'s rows of metrics/cv_oof.csv (every model's)."""
    path = Path(path)
    if not path.is_file():
        raise missing(path, "the crossval stage's out-of-fold probabilities")
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        rows = list(reader)
    if not header or header[:3] != ["path", "label", "model"] or len(header) < 5:
        raise outdated(path, "is not crossval's out-of-fold probabilities")
    models = list(dict.fromkeys(row[2] for row in rows))
    if model is not None:
        if model not in models:
            raise outdated(path, f"has no out-of-fold probabilities of the {model} (it has: {', '.join(models)})")
        rows = [row for row in rows if row[2] == model]
    elif len(models) > 1:
        raise PipelineError(f"{path} holds several models' out-of-fold probabilities ({', '.join(models)}); "
                            "read one model's at a time")
    classes = [column.removeprefix("p_") for column in header[3:]]
    probabilities = np.array([[float(value) for value in row[3:]] for row in rows]).reshape(len(rows), len(classes))
    return [row[0] for row in rows], [row[1] for row in rows], classes, probabilities


def not_located(record):
    """True where the manifest says the neckline locator found nothing; manifests without the column: False."""
    return str(record.get("located", "")).strip().lower() in ("false", "0", "no")


def find_suspects(labels, probabilities, located=None):
    """[(index, suggested class index, label-quality score, reasons)] worst first (lowest score; ties by index).

    labels: (n,) given class indices; probabilities: (n, classes) out-of-fold; located: (n,) bool or None.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    # n_jobs=1: one process (cleanlab would fork one per core, beside TensorFlow), and the same result every run.
    mislabelled = find_label_issues(labels, probabilities, filter_by="prune_by_noise_rate", n_jobs=1)
    quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    suggested = probabilities.argmax(axis=1)
    found = []
    for i in np.lexsort((np.arange(len(labels)), quality)):
        reasons = [MISLABELLED] if mislabelled[i] else []
        if located is not None and not located[i]:
            reasons.append(NOT_LOCATED)
        if reasons:
            found.append((int(i), int(suggested[i]), float(quality[i]), reasons))
    return found


def suspect_table(prepared_dir, predictions_path):
    """(table rows worst first: {path, split, given, suggested, quality, reason}, classes, the manifest by path,
    how many photos were looked at)."""
    paths, given, classes, probabilities = read_predictions(predictions_path)
    manifest = {record["path"]: record for record in dataset.read_manifest(prepared_dir)}
    unknown = [p for p in paths if p not in manifest or manifest[p]["split"] == "test"]
    if unknown:
        raise outdated(Path(predictions_path), f"has {len(unknown)} photo(s) that are not train or validation photos "
                                               f"of the prepared data (e.g. {unknown[0]})")
    if [classes[i] for i in range(len(classes))] != dataset.read_summary(prepared_dir)["classes"]:
        raise outdated(Path(predictions_path), "has other classes than the prepared data")
    labels = np.array([classes.index(name) for name in given])
    records = [manifest[p] for p in paths]
    located = np.array([not not_located(r) for r in records]) if any("located" in r for r in records) else None
    found = find_suspects(labels, probabilities, located)
    table = [{"path": paths[i], "split": records[i]["split"], "given": given[i], "suggested": classes[s],
              "quality": f"{q:.6f}", "reason": "; ".join(reasons)} for i, s, q, reasons in found]
    return table, classes, manifest, len(paths)


def write_table(path, table):
    with atomic_file(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)


def plot_gallery(path, store, rows, table, total):
    """The worst suspects, each with its given and suggested label and its label-quality score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not table:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no suspect labels in train + validation", ha="center", va="center", fontsize=14)
    else:
        columns = min(6, len(table))
        lines = -(-len(table) // columns)
        fig, axes = plt.subplots(lines, columns, figsize=(2.6 * columns, 3.2 * lines), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, image, row in zip(axes.flat, store.read(np.array(rows)), table):
            ax.imshow(image)
            ax.set_title(f"{Path(row['path']).name[-24:]}\ngiven: {row['given']}\nsuggested: {row['suggested']} "
                         f"({float(row['quality']):.3f})", fontsize=8)
        fig.suptitle(f"The {len(table)} worst of {total} suspect labels (train + validation; score: out-of-fold "
                     f"probability of the given label)")
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=80, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def top_paths(count, csv_path, exclude_path=None, data_path=""):
    """The paths of the `count` worst suspects the exclude file does not decide on yet."""
    decided = decisions(exclude_path, data_path) if exclude_path else {}
    return [row["path"] for row in read_suspects(csv_path) if row["path"] not in decided][:count]


def suspects(paths):
    """Write the suspects table and gallery; return the table's rows."""
    table, classes, manifest, looked_at = suspect_table(paths.prepared, paths.cv_predictions)
    write_table(paths.suspects, table)
    with dataset.ImageStore(paths.prepared / dataset.IMAGES_FILE) as store:
        plot_gallery(paths.suspects_gallery, store, [manifest[row["path"]]["row"] for row in table[:GALLERY_SIZE]],
                     table[:GALLERY_SIZE], len(table))
    per_class = {name: sum(row["given"] == name for row in table) for name in classes}
    log.info("%d suspect photo(s) of %d train + validation photos (%s); worst first in %s, the worst %d in %s",
             len(table), looked_at, ", ".join(f"{name} {count}" for name, count in per_class.items()),
             paths.suspects, min(GALLERY_SIZE, len(table)), paths.suspects_gallery)
    if table:
        log.info("look at them: `python -m stages.serve`, then /review; or `python -m stages.suspects --top 30 "
                 ">> exclude.txt` (data.exclude) after a look")
    return table


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m stages.suspects",
                                     description="Stage `suspects`: the train and validation photos whose label looks "
                                                 "wrong, to look at first.")
    parser.add_argument("--top", type=int, metavar="N",
                        help="print the N worst suspects' paths not yet in data.exclude, one a line, and exit")
    args = parser.parse_args(argv)
    if args.top is not None and args.top < 1:
        parser.error(f"--top must be 1 or more, got {args.top}")
    return args


def run(argv=None, paths=Paths()):
    """The stage (no --top), or the --top listing on stdout for `>> exclude.txt`."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.top is None:
        suspects(paths)
        return
    data = load_params().data
    if not paths.suspects.is_file():
        raise PipelineError(f"{paths.suspects} not found; run `dvc repro` (its suspects stage) first")
    for path in top_paths(args.top, paths.suspects, data.exclude, data.path):
        print(path)
