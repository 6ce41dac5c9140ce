"""Fine-tuning against the frozen head and the baseline, on grouped folds of train + validation (never test).

    python benchmarks/finetune_cv.py REPO [--folds 5] [--repeats 1] [--only 2] [-S unfreeze=2 -S learning_rate=1e-4 ...]

REPO is a repository (a copy) where `dvc repro extract` has run with the configuration to measure
(data, region, backbone, weights: e.g. `bash benchmarks/real_data.sh --dry-run necklines_top_nomirror-mobilenet-smote`
prints the overrides). In each fold, exactly as the crossval stage does it (fashion.evaluation.crossval.fold_head): a share
of the fold's training part is kept apart for early stopping (grouped by item), the head is trained on the rest's
cached features after SMOTE, the baseline on the whole training part; then the fine-tuning model starts from
that head and trains on the same images (fashion.models.finetune_model.fine_tune, the stage's own code). All three are
scored on the held-out fold; every held-out photo's three predictions go to REPO/oof-finetune_cv.csv (repeat, fold,
path, label, one column per model). --repeats reshuffles the folds as crossval.repeats does (the stage's folds and
fold seeds). -S overrides the `finetune` params of REPO/params.yaml (the same keys). Prints one JSON line per fold
and a summary with mean and sd, and the paired per-fold differences fine-tuned minus head and fine-tuned minus
baseline (mean and sd); --only N stops after N folds (the numbers then cover those folds only).
"""

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fashion.data import dataset  # noqa: E402
from fashion.models.baseline import baseline_probabilities, fit_baseline  # noqa: E402
from fashion.evaluation.crossval import fold_head  # noqa: E402
from fashion.evaluation.folds import folds, pooled_features, pooled_paths, pooled_rows  # noqa: E402
from fashion.features.store import INFO_FILE, read_info  # noqa: E402
from fashion.models.finetune_model import fine_tune  # noqa: E402
from fashion.evaluation.intervals import headline  # noqa: E402
from fashion.params import load_params, validate  # noqa: E402
from fashion.paths import Paths  # noqa: E402
from fashion.data.recipes import BackboneRecipe  # noqa: E402
from fashion.runtime import make_reproducible  # noqa: E402

MODELS = ("head", "baseline", "finetuned")
# The fine-tuned model's per-fold gain over each of the other two, on the same held-out photos.
PAIRS = (("finetuned", "head"), ("finetuned", "baseline"))


def run(repo, n_folds, repeats, only, overrides):
    repo = Path(repo)
    plain = load_params(repo / "params.yaml").model_dump()
    for key, value in overrides.items():
        section = plain["finetune"]
        *parents, leaf = key.split(".")
        for name in parents:
            section = section[name]
        section[leaf] = value
    params = validate({**plain, "finetune": {**plain["finetune"], "enabled": True}})
    settings, seed = params.finetune, params.seed
    features_dir, prepared_dir = Paths(repo).features, Paths(repo).prepared
    info = read_info(features_dir)
    classes = info["classes"]
    recipe = BackboneRecipe.from_artifact(info, features_dir / INFO_FILE)
    x, y, groups = pooled_features(features_dir, prepared_dir)
    rows = pooled_rows(features_dir)
    paths = pooled_paths(features_dir, prepared_dir)
    log = logging.getLogger("finetune_cv")
    scores = []
    oof = open(repo / "oof-finetune_cv.csv", "w")
    oof.write("repeat,fold,path,label," + ",".join(MODELS) + "\n")
    with oof, dataset.ImageStore(prepared_dir / dataset.IMAGES_FILE) as store, tempfile.TemporaryDirectory() as tmp:
        for repeat, fold, train, held in folds(y, groups, n_folds, repeats, seed):
            if only and len(scores) >= only:
                break
            fold_seed = (seed + 1000 * repeat + fold) % 2**32  # the crossval stage's fold seed
            head, fit, stop = fold_head(params, classes, x, y, groups, train, fold_seed)
            head_path = Path(tmp) / f"head{repeat}-{fold}.keras"
            head.save(head_path)
            predicted = {
                "head": head.predict(x[held], batch_size=256, verbose=0).argmax(axis=1),
                "baseline": baseline_probabilities(fit_baseline(x[train], y[train], fold_seed), x[held],
                                                   len(classes)).argmax(axis=1),
            }
            make_reproducible(fold_seed)
            started = time.perf_counter()
            model, history, seconds, devices = fine_tune(head_path, recipe, store, (rows[fit], y[fit]),
                                                         (rows[stop], y[stop]), len(classes), settings, fold_seed, log)
            epochs = len(history.history["loss"])
            probabilities = np.concatenate([model.predict_on_batch(batch.astype(np.float32))
                                            for batch in store.batches(rows[held], settings.batch_size)])
            predicted["finetuned"] = probabilities.argmax(axis=1)
            result = {name: headline(y[held], predicted[name], len(classes)) for name in MODELS}
            oof.writelines(f"{repeat + 1},{fold + 1},{paths[i]},{classes[y[i]]},"
                           + ",".join(classes[predicted[name][k]] for name in MODELS) + "\n"
                           for k, i in enumerate(held))
            oof.flush()
            scores.append(result)
            print(json.dumps({"repeat": repeat + 1, "fold": fold + 1, "held_out": int(len(held)),
                              "fit": int(len(fit)),
                              "epochs_run": epochs, "seconds_per_epoch": round(seconds / epochs, 1),
                              "wall_seconds": round(time.perf_counter() - started, 1), "devices": devices,
                              **{name: {k: round(v, 4) for k, v in result[name].items()} for name in MODELS}}),
                  flush=True)

    def sd(values):
        return np.std(values, ddof=1) if len(values) > 1 else 0.0

    summary = {name: {f"{metric}_{stat}": round(float(fn([s[name][metric] for s in scores])), 4)
                      for metric in ("balanced_accuracy", "macro_f1") for stat, fn in (("mean", np.mean), ("sd", sd))}
               for name in MODELS}
    for better, other in PAIRS:
        summary[f"{better}_minus_{other}"] = {
            f"{metric}_{stat}": round(float(fn([s[better][metric] - s[other][metric] for s in scores])), 4)
            for metric in ("balanced_accuracy", "macro_f1") for stat, fn in (("mean", np.mean), ("sd", sd))}
    print(json.dumps({"summary": summary, "folds": len(scores), "finetune": settings.model_dump(),
                      "backbone": recipe.model}), flush=True)
    return summary


def parse_overrides(pairs):
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"-S takes key=value (a finetune key), got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", type=int, default=0, help="stop after this many folds (0: all)")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    run(args.repo, args.folds, args.repeats, args.only, parse_overrides(args.overrides))


if __name__ == "__main__":
    main()
