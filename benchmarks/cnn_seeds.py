"""The custom CNN over several seeds: mean and spread of its test scores, not one lucky run.

Run it in a repository whose `data/prepared` is current (after `dvc repro prepare`, or any run):

    python benchmarks/cnn_seeds.py --seeds 1 2 3 [-S cnn.epochs=40 ...] [--out cnn_seeds.json]

Each seed trains the CNN from scratch with the workspace's params.yaml (the -S overrides on top,
`seed` replaced; the split stays as prepared), then scores it on the test split with the evaluate
stage's own functions: accuracy, balanced accuracy and macro-F1 with their 95 % intervals. Models go
to a temporary folder; nothing in the workspace changes.

`--score-on DIR` scores on every image of another repository's data/prepared instead of the test split:
a development set for choosing a recipe without touching the test split, e.g. a copy whose params.yaml
has `seed: 1000` and 200 images per class in `synthetic.counts`, after `dvc repro prepare` there
(independent generated images; the classes must be the same).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashion.paths import Paths  # noqa: E402
from fashion.data import dataset  # noqa: E402
from fashion.evaluation.scores import read_test_split, score, with_intervals  # noqa: E402
from fashion.params import load_params, validate  # noqa: E402
from fashion.models.cnn import train_cnn  # noqa: E402

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def override(params, assignments):
    """params with KEY=VALUE assignments (dotted keys, YAML values) applied, validated again."""
    params = params.model_dump()
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        *path, last = key.split(".")
        section = params
        for part in path:
            section = section[part]
        section[last] = yaml.safe_load(value)
    return validate(params)


def scored_rows(score_on):
    """(prepared folder, rows, labels) to score on: the test split here, or every image of score_on's."""
    if score_on is None:
        rows, labels, _ = read_test_split(Paths().prepared)
        return Paths().prepared, rows, labels
    prepared = Paths(score_on).prepared
    if dataset.read_summary(prepared)["classes"] != dataset.read_summary(Paths().prepared)["classes"]:
        raise SystemExit(f"{prepared} has other classes than data/prepared: it cannot score this model")
    records = dataset.read_manifest(prepared)
    return prepared, np.array([r["row"] for r in records]), np.array([r["label_index"] for r in records])


def one_seed(params, seed, folder, score_on=None):
    params = override(params, [f"seed={seed}"])
    started = time.perf_counter()
    model, trained = train_cnn(params, Paths(folder, prepared=Paths().prepared))
    seconds = time.perf_counter() - started
    prepared, rows, labels = scored_rows(score_on)
    classes = dataset.read_summary(Paths().prepared)["classes"]
    with dataset.ImageStore(prepared / dataset.IMAGES_FILE) as store:
        probabilities = np.concatenate([model.predict(batch.astype(np.float32), verbose=0)
                                        for batch in store.batches(rows, 256)])
    result = with_intervals(score(labels, probabilities, classes), labels, probabilities, len(classes),
                            params.evaluate.bootstrap, seed)
    return {"seed": seed, "seconds": round(seconds, 1), "best_epoch": trained["best_epoch"],
            "epochs_run": trained["epochs_run"], "best_val_accuracy": trained["best_val_accuracy"],
            "test_images": result["test_images"],
            **{key: result[key] for name in METRICS for key in (name, f"{name}_ci") if key in result}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--score-on", type=Path, metavar="DIR",
                        help="score on every prepared image of this repository instead of the test split")
    args = parser.parse_args()
    params = override(load_params(), args.overrides)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            runs.append(one_seed(params, seed, Path(tmp) / str(seed), args.score_on))
            print(json.dumps(runs[-1]), flush=True)
    summary = {name: {"mean": round(float(np.mean([r[name] for r in runs])), 4),
                      "sd": round(float(np.std([r[name] for r in runs], ddof=1)), 4) if len(runs) > 1 else 0.0,
                      "min": min(r[name] for r in runs), "max": max(r[name] for r in runs)}
               for name in METRICS}
    summary["seconds_mean"] = round(float(np.mean([r["seconds"] for r in runs])), 1)
    for name in METRICS:
        s = summary[name]
        print(f"{name}: mean {s['mean']:.3f}, sd {s['sd']:.3f}, min {s['min']:.3f}, max {s['max']:.3f} "
              f"over seeds {args.seeds}")
    if args.out:
        args.out.write_text(json.dumps({"overrides": args.overrides, "scored_on": str(args.score_on or "test split"),
                                        "runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
