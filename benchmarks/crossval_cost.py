"""What the crossval stage costs with fine-tuning on: its own folds, a few of them, timed.

    python benchmarks/crossval_cost.py REPO [--only 1] [--workers 1] [-S finetune.epochs=8 -S crossval.folds=5 ...]

REPO is a folder (a copy of the repository, or any root laid out like it) where `prepare` and `extract` ran,
with the params.yaml they ran with. The first --only folds of the stage's folds (crossval.folds x
crossval.repeats, the same fold indices and seeds) run through the stage's own fold function
(fashion.evaluation.crossval.fold_probabilities: head, baseline and the fine-tuned model), --workers of
them side by side in spawned processes as the stage runs them (0: one per core). -S overrides any key of
REPO/params.yaml; finetune.enabled is always true. Prints one JSON line per fold (wall seconds, fine-tuning
epochs and seconds, balanced accuracy per model) and an estimate of the whole stage: the folds run in rounds
of --workers, each as long as the slowest fold measured (each fold trains on about the same number of photos).
"""

import argparse
import json
import logging
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fashion.evaluation.crossval import fold_probabilities  # noqa: E402
from fashion.evaluation.folds import fold_jobs, pooled_features, pooled_rows  # noqa: E402
from fashion.evaluation.crossval_finetuned import fold_images  # noqa: E402
from fashion.evaluation.intervals import headline  # noqa: E402
from fashion.features.store import read_info  # noqa: E402
from fashion.params import load_params, validate  # noqa: E402
from fashion.paths import Paths  # noqa: E402


LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def with_overrides(params, overrides):
    plain = params.model_dump()
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        section = plain
        for name in parents:
            section = section[name]
        section[leaf] = value
    plain["finetune"]["enabled"] = True
    return validate(plain)


def timed_fold(params, classes, x, y, groups, images, job):
    """One fold through the stage's fold function, in this process: (probabilities, notes, wall seconds)."""
    repeat, fold, train, held, seed = job
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S")  # a spawned worker: its epochs
    started = time.perf_counter()
    probabilities, notes = fold_probabilities(params, classes, x, y, groups, train, held, seed, images,
                                              f"repeat {repeat + 1} fold {fold + 1}")
    return probabilities, notes, time.perf_counter() - started


def run(repo, only, workers, overrides):
    repo = Path(repo)
    params = with_overrides(load_params(repo / "params.yaml"), overrides)
    features_dir, prepared_dir = Paths(repo).features, Paths(repo).prepared
    info = read_info(features_dir)
    classes = info["classes"]
    x, y, groups = pooled_features(features_dir, prepared_dir)
    images = fold_images(info, features_dir, prepared_dir, pooled_rows(features_dir))
    jobs = fold_jobs(y, groups, params.crossval, params.seed)
    chosen = jobs[:only] if only else jobs
    workers = min(len(chosen), workers or os.cpu_count() or 1)
    started = time.perf_counter()
    args = [(params, classes, x, y, groups, images, job) for job in chosen]
    if workers == 1:
        results = [timed_fold(*a) for a in args]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(timed_fold, *zip(*args)))
    wall = time.perf_counter() - started
    for (repeat, fold, train, held, _), (probabilities, notes, seconds) in zip(chosen, results):
        scores = {name: round(headline(y[held], p.argmax(axis=1), len(classes))["balanced_accuracy"], 4)
                  for name, p in probabilities.items()}
        print(json.dumps({"repeat": repeat + 1, "fold": fold + 1, "train": int(len(train)), "held_out": int(len(held)),
                          "fold_seconds": round(seconds, 1), **notes, "balanced_accuracy": scores}), flush=True)
    slowest = max(seconds for *_, seconds in results)
    rounds = math.ceil(len(jobs) / workers)
    print(json.dumps({"folds_measured": len(chosen), "workers": workers, "wall_seconds": round(wall, 1),
                      "stage_folds": len(jobs), "estimated_stage_hours": round(rounds * slowest / 3600, 2),
                      "finetune": {k: v for k, v in params.finetune.model_dump().items() if k != "augment"},
                      "backbone": images.recipe.model, "images": int(len(y))}), flush=True)


def parse_overrides(pairs):
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"-S takes key=value, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo")
    parser.add_argument("--only", type=int, default=1, help="folds to run (0: all of the stage's)")
    parser.add_argument("--workers", type=int, default=1, help="folds side by side (0: one per core)")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S")
    run(args.repo, args.only, args.workers, parse_overrides(args.overrides))


if __name__ == "__main__":
    main()
