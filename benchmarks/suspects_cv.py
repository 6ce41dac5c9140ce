"""Suspect labels of the neckline photos, and what excluding the worst k from fitting does to grouped CV.

    python benchmarks/suspects_cv.py [--out benchmarks/results/suspects] [--repeats 3] [--k 0 20 50]

The README's neckline configuration (benchmarks/real_data.sh: necklines_top with MobileNet 1.0 weights from
../shared/weights, photos grouped by product with split.group, SMOTE), run through the stages' own functions
instead of `dvc exp run`: prepare, extract, crossval (which writes the out-of-fold probabilities), suspects.
Then, on the first repeat's folds, the head and the baseline are trained again with the top k suspects left
out of each fold's training part ONLY: every fold still scores all of its held-out photos, so dropping hard
cases cannot raise the number by leaving them out of the score. The test split is never read.

Writes OUT/suspects.csv, OUT/suspects.png, OUT/top30.png (a contact sheet of the worst 30 at full size, to
look at), OUT/results.json; prints per-class counts and mean +- sd over folds per k.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fashion.paths import Paths  # noqa: E402
from fashion.models.baseline import baseline_probabilities, fit_baseline  # noqa: E402
from fashion.evaluation.crossval import fold_head  # noqa: E402
from fashion.evaluation.folds import folds, pooled_features, pooled_paths  # noqa: E402
from fashion.evaluation.crossval import crossval
from fashion.features.extraction import extract  # noqa: E402
from fashion.features.store import read_info  # noqa: E402
from fashion.evaluation.intervals import headline  # noqa: E402
from fashion.params import validate  # noqa: E402
from fashion.data.preparation import prepare  # noqa: E402
from fashion.evaluation.suspects import suspects  # noqa: E402

SHARED = REPO.parent / "shared"
NECKLINES_TOP = {  # benchmarks/real_data.sh: necklines_top-mobilenet-smote
    "data.source": "folder", "data.path": str(SHARED / "data/necklines"), "data.image_size": 224,
    "split.group": r"-(\d+)-\d+\.[a-z]+$", "data.region.top": 0.0, "data.region.bottom": 0.6,
    "data.region.left": 0.0, "data.region.right": 1.0, "data.resize": "crop", "features.mirror": True,
    "model": "mobilenet", "features.weights": str(SHARED / "weights/mobilenet_1.0_224_no_top.weights.h5"),
    "features.alpha": 1.0, "smote.enabled": True, "crossval.folds": 5, "data.exclude": None,
}


def neckline_params(repeats):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in {**NECKLINES_TOP, "crossval.repeats": repeats}.items():
        section = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            section = section[key]
        section[leaf] = value
    return validate(params)


def excluded_from_fitting(params, classes, x, y, groups, paths, ranked, ks, log):
    """{k: [per fold {model: headline}]}: each first-repeat fold's models trained without the top k suspects."""
    settings, seed = params.crossval, params.seed
    position = {path: i for i, path in enumerate(paths)}
    results = {k: [] for k in ks}
    for _, fold, train, held in folds(y, groups, settings.folds, 1, seed):
        fold_seed = (seed + fold) % 2**32  # the crossval stage's seed of repeat 1, this fold
        for k in ks:
            dropped = {position[p] for p in ranked[:k]}
            fit = np.array([i for i in train if i not in dropped])
            model, _, _ = fold_head(params, classes, x, y, groups, fit, fold_seed)
            probabilities = {
                "head": model.predict(x[held], batch_size=params.head.batch_size, verbose=0),
                "baseline": baseline_probabilities(fit_baseline(x[fit], y[fit], fold_seed), x[held], len(classes)),
            }
            scores = {name: headline(y[held], p.argmax(axis=1), len(classes)) for name, p in probabilities.items()}
            results[k].append({name: {**s, "dropped_from_fitting": len(train) - len(fit)} for name, s in scores.items()})
            log.info("fold %d, k=%d (%d dropped from this fold's training part): head %.3f, baseline %.3f", fold + 1,
                     k, len(train) - len(fit), scores["head"]["balanced_accuracy"],
                     scores["baseline"]["balanced_accuracy"])
    return results


def contact_sheet(path, data_path, table, count=30):
    """The worst `count` suspects as the photographer took them (whole photo), with path, given and suggested."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = table[:count]
    columns = 6
    fig, axes = plt.subplots(-(-len(rows) // columns), columns, figsize=(3 * columns, 3.6 * -(-len(rows) // columns)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for number, (ax, row) in enumerate(zip(axes.flat, rows), start=1):
        with Image.open(Path(data_path) / row["path"]) as image:
            ax.imshow(image.convert("RGB"))
        ax.set_title(f"{number}. {Path(row['path']).name[-22:]}\ngiven {row['given']}\nsuggested {row['suggested']} "
                     f"({float(row['quality']):.2f})", fontsize=8)
    fig.savefig(path, dpi=70, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/suspects"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, nargs="+", default=[0, 20, 50])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("suspects_cv")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = neckline_params(args.repeats)
    started = time.perf_counter()
    layout = Paths(out)
    prepare(params, layout)
    extract(params, layout)
    cv = crossval(params, layout)
    table = suspects(layout)
    contact_sheet(out / "top30.png", params.data.path, table)

    classes = read_info(layout.features)["classes"]
    x, y, groups = pooled_features(layout.features, layout.prepared)
    paths = pooled_paths(layout.features, layout.prepared)
    per_class = {name: {"suspects": sum(r["given"] == name for r in table), "photos": int((y == i).sum())}
                 for i, name in enumerate(classes)}
    ranked = [row["path"] for row in table]
    ks = [k for k in args.k if k <= len(ranked)] + ([len(ranked)] if any(k > len(ranked) for k in args.k) else [])
    by_k = excluded_from_fitting(params, classes, x, y, groups, paths, ranked, ks, log)
    summary = {str(k): {name: {stat: round(float(fn([f[name]["balanced_accuracy"] for f in fold_scores])), 4)
                               for stat, fn in (("mean", np.mean), ("sd", lambda v: np.std(v, ddof=1)))}
                        for name in ("head", "baseline")} for k, fold_scores in by_k.items()}
    results = {"cv": cv, "suspects": len(table), "photos": int(len(y)), "per_class": per_class,
               "top_k_excluded_from_fitting": summary, "folds": by_k, "seconds": round(time.perf_counter() - started)}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "folds"}, indent=2))


if __name__ == "__main__":
    main()
