"""The custom CNN on grouped folds of train + validation (never test): the numbers to choose a CNN recipe by.

    python benchmarks/cnn_cv.py REPO [--folds 5] [--only N] [-S cnn.epochs=40 -S seed=1 ...]

REPO is a repository (a copy) where `dvc repro prepare` has run with the data to measure (for the neckline
photos: `bash benchmarks/real_data.sh --dry-run necklines_top_nomirror-mobilenet-smote` prints the
overrides). The folds are the crossval stage's own (fashion.evaluation.folds.folds: stratified, grouped by item when
split.group is set, seeded by `seed`); in each, crossval.validation of the fold's training part is kept apart
for early stopping (grouped by item), the network is trained on the rest by the train_cnn stage's own code
(fashion.models.cnn.fit_cnn) and scored on the held-out fold. -S overrides REPO/params.yaml (dotted keys, YAML
values). Prints one JSON line per fold and a summary with mean and sd over the folds; --only N stops after N
folds (the numbers then cover those folds only).
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cnn_seeds import override  # noqa: E402
from fashion.data import dataset  # noqa: E402
from fashion.evaluation.folds import early_stopping_split, folds  # noqa: E402
from fashion.evaluation.intervals import METRICS, headline  # noqa: E402
from fashion.params import load_params  # noqa: E402
from fashion.paths import Paths  # noqa: E402
from fashion.runtime import make_reproducible  # noqa: E402
from fashion.models.cnn import fit_cnn  # noqa: E402


def pooled_rows(prepared_dir):
    """(rows, labels, groups) of the train and validation splits together, from the manifest."""
    records = [r for r in dataset.read_manifest(prepared_dir) if r["split"] in ("train", "validation")]
    return (np.array([r["row"] for r in records]), np.array([r["label_index"] for r in records]),
            np.array([r["group"] for r in records]))


def run(repo, n_folds, only, assignments, log):
    repo = Path(repo)
    params = override(load_params(repo / "params.yaml"), assignments)
    cnn, seed = params.cnn, params.seed
    prepared_dir = Paths(repo).prepared
    classes = dataset.read_summary(prepared_dir)["classes"]
    rows, labels, groups = pooled_rows(prepared_dir)
    scores = []
    with dataset.ImageStore(prepared_dir / dataset.IMAGES_FILE) as store:
        for _, fold, train, held in folds(labels, groups, n_folds, 1, seed):
            if only and fold >= only:
                break
            fold_seed = (seed + fold) % 2**32
            fit, stop = early_stopping_split(labels[train], groups[train], params.crossval.validation, fold_seed)
            fit, stop = train[fit], train[stop]
            make_reproducible(fold_seed)
            started = time.perf_counter()
            model, history, seconds = fit_cnn(store, (rows[fit], labels[fit]), (rows[stop], labels[stop]),
                                              len(classes), cnn, fold_seed, log)
            probabilities = np.concatenate([model.predict_on_batch(batch.astype(np.float32))
                                            for batch in store.batches(rows[held], 256)])
            result = headline(labels[held], probabilities.argmax(axis=1), len(classes))
            scores.append(result)
            print(json.dumps({"fold": fold + 1, "held_out": int(len(held)), "fit": int(len(fit)),
                              "epochs_run": len(history.history["loss"]), "train_seconds": round(seconds, 1),
                              "wall_seconds": round(time.perf_counter() - started, 1),
                              **{k: round(v, 4) for k, v in result.items()}}), flush=True)
    summary = {f"{metric}_{stat}": round(float(fn([s[metric] for s in scores])), 4)
               for metric in METRICS
               for stat, fn in (("mean", np.mean), ("sd", lambda v: np.std(v, ddof=1) if len(v) > 1 else 0.0))}
    print(json.dumps({"summary": summary, "folds": len(scores), "chance": round(1 / len(classes), 4),
                      "overrides": assignments}), flush=True)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", type=int, default=0, help="stop after this many folds (0: all)")
    parser.add_argument("-S", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("cnn_cv")
    log.setLevel(logging.WARNING)  # the per-epoch lines would drown the per-fold results
    run(args.repo, args.folds, args.only, args.assignments, log)


if __name__ == "__main__":
    main()
