"""Back views in training, by grouped cross-validation of train + validation (never the test split).

    python benchmarks/backview_cv.py REPO [--folds 5] [--repeats 1] [--models baseline head] [--rules all drop weight]
                                          [--weight 0.5]
    python benchmarks/backview_cv.py REPO --table     # REPO/backview_cv.jsonl (and REPO/oof-finetune_cv.csv) as tables

REPO is a folder laid out like a repository where prepare and extract ran with data.locate: auto, which marks
back views (`view: back` in data/prepared/manifest.csv): `python benchmarks/locate_cv.py WORK --configs
auto_tight_one` builds WORK/auto_tight_one. On the crossval stage's own folds (fashion.evaluation.crossval: folds,
fold_head; fashion.models.baseline), grouped by product, the frozen head and the baseline are trained three ways:

  all       every photo of the fold's training part (what the pipeline does)
  drop      the back views left out of the training part (the head's early-stopping share too)
  weight    every photo, the back views' loss weighted by --weight (the baseline: LogisticRegression's
            sample_weight; the head: Keras sample weights, SMOTE's synthetic photos weighted 1)

and each is scored on every held-out photo, on the held-out photos that are not back views (what a user gets
who sends back views to review: "abstain", at the coverage of the non-back share) and on the back views. One
JSON line per (repeat, fold, rule, model) goes to REPO/backview_cv.jsonl. --table prints mean ± sd over the
folds and the paired per-fold differences to `all`; when REPO/oof-finetune_cv.csv is there
(benchmarks/finetune_cv.py REPO), also the fine-tuned model's held-out photos split the same way.
"""

import argparse
import csv
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fashion.data import dataset  # noqa: E402
from fashion.evaluation.crossval import fold_head  # noqa: E402
from fashion.evaluation.folds import early_stopping_split, folds, pooled_features, pooled_paths  # noqa: E402
from fashion.evaluation.intervals import headline  # noqa: E402
from fashion.features.smote import smote_resample  # noqa: E402
from fashion.models.baseline import baseline_probabilities, fit_baseline  # noqa: E402
from fashion.models.head import build_head  # noqa: E402
from fashion.models.training import training_callbacks  # noqa: E402
from fashion.params import load_params  # noqa: E402
from fashion.runtime import make_reproducible, steady  # noqa: E402

RULES = ("all", "drop", "weight")
PARTS = ("all", "not_back", "back")
RESULTS = "backview_cv.jsonl"
FINETUNED_OOF = "oof-finetune_cv.csv"


def back_views(prepared_dir, paths):
    """Whether each pooled photo is a back view in the manifest (data.locate: auto's `view`)."""
    view = {r["path"]: r["view"] for r in dataset.read_manifest(prepared_dir)}
    if not any(view.values()):
        raise SystemExit(f"{prepared_dir}/manifest.csv has no views: prepare REPO with data.locate: auto")
    return np.array([view[path] == "back" for path in paths])


def weighted_baseline(x, y, weights, seed):
    """The baseline (fashion.models.baseline.fit_baseline's pipeline) refitted with per-photo loss weights."""
    from threadpoolctl import threadpool_limits

    model = fit_baseline(x, y, seed)  # the pipeline as the baseline builds it, refitted with the weights
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")  # ConvergenceWarning, as fit_baseline
        model.fit(x, y, logisticregression__sample_weight=weights)
    return model


def weighted_fold_head(params, classes, x, y, groups, train, weights, seed):
    """fold_head with per-photo loss weights: the same early-stopping split, SMOTE, head and training
    (fashion.models.head.fit_head), the weights passed to Keras beside each photo."""
    import tensorflow as tf

    fit, stop = early_stopping_split(y[train], groups[train], params.crossval.validation, seed)
    fit, stop = train[fit], train[stop]
    fit_x, fit_y, fit_w = x[fit], y[fit], weights[fit]
    if params.smote.enabled:
        fit_x, fit_y, _ = smote_resample(fit_x, fit_y, params.smote.k_neighbors, seed, classes)
        # imbalanced-learn returns the original photos first, in their order, then the synthetic ones.
        assert np.allclose(fit_x[:len(fit)], x[fit]), "SMOTE reordered the photos"
        fit_w = np.concatenate([fit_w, np.ones(len(fit_y) - len(fit))])
    make_reproducible(seed)
    head = params.head
    model = build_head(fit_x, len(classes), head.units, head.dropout, head.learning_rate, head.input_dropout,
                       head.l2)
    data = (fit_x, fit_y, fit_w.astype(np.float32))
    batches = steady(tf.data.Dataset.from_tensor_slices(data).shuffle(len(fit_y), seed=seed,
                                                                        reshuffle_each_iteration=True)
                     .batch(head.batch_size).prefetch(2))
    validation = steady(tf.data.Dataset.from_tensor_slices((x[stop], y[stop])).batch(head.batch_size).cache())
    model.fit(batches, validation_data=validation, epochs=head.epochs, shuffle=False, verbose=0,
              callbacks=training_callbacks(head.patience, verbose=0, epochs=head.epochs))
    return model


def predict(params, classes, x, y, groups, train, held, back, rule, model, weight, seed):
    """The held-out photos' predicted classes of `model` trained on the fold's training part under `rule`."""
    if rule == "drop":
        train = train[~back[train]]
    if rule == "weight":
        weights = np.where(back, weight, 1.0)
        if model == "head":
            return weighted_fold_head(params, classes, x, y, groups, train, weights, seed) \
                .predict(x[held], batch_size=256, verbose=0).argmax(axis=1)
        return baseline_probabilities(weighted_baseline(x[train], y[train], weights[train], seed), x[held],
                                      len(classes)).argmax(axis=1)
    if model == "head":
        head, _, _ = fold_head(params, classes, x, y, groups, train, seed)
        return head.predict(x[held], batch_size=256, verbose=0).argmax(axis=1)
    return baseline_probabilities(fit_baseline(x[train], y[train], seed), x[held], len(classes)).argmax(axis=1)


def part_scores(labels, predicted, back, num_classes):
    """{part: balanced accuracy, part_accuracy: accuracy} on all, the non-back and the back held-out photos."""
    out = {}
    for part, mask in (("all", np.ones(len(labels), bool)), ("not_back", ~back), ("back", back)):
        if mask.any():
            scores = headline(labels[mask], predicted[mask], num_classes)
            out[part] = round(scores["balanced_accuracy"], 4)
            out[f"{part}_accuracy"] = round(scores["accuracy"], 4)
    return out


def run(repo, models, rules, n_folds, repeats, weight, log):
    params = load_params(repo / "params.yaml")
    features_dir, prepared_dir = repo / "data/features", repo / "data/prepared"
    x, y, groups = pooled_features(features_dir, prepared_dir)
    back = back_views(prepared_dir, pooled_paths(features_dir, prepared_dir))
    classes = json.loads((features_dir / "info.json").read_text())["classes"]
    log.info("%d photos, %d back views", len(y), int(back.sum()))
    with open(repo / RESULTS, "a") as out:
        for repeat, fold, train, held in folds(y, groups, n_folds, repeats, params.seed):
            seed = (params.seed + 1000 * repeat + fold) % 2**32  # the crossval stage's fold seed
            for model in models:
                for rule in rules:
                    predicted = predict(params, classes, x, y, groups, train, held, back, rule, model, weight, seed)
                    record = {"repeat": repeat + 1, "fold": fold + 1, "model": model, "rule": rule,
                              "weight": weight if rule == "weight" else None,
                              "trained_on": int(len(train) - (back[train].sum() if rule == "drop" else 0)),
                              "held_out": int(len(held)), "back_share": round(float(back[held].mean()), 4),
                              **part_scores(y[held], predicted, back[held], len(classes))}
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                    log.info("%s", record)


def stat(values, signed=False):
    return f"{np.mean(values):{'+' if signed else ''}.3f} ± {np.std(values, ddof=1):.3f}"


def finetuned_records(repo):
    """backview_cv.jsonl-like records (rule `all`) of REPO/oof-finetune_cv.csv's three models."""
    prepared_dir = repo / "data/prepared"
    view = {r["path"]: r["view"] for r in dataset.read_manifest(prepared_dir)}
    with open(repo / FINETUNED_OOF, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:  # finetune_cv.py has not finished a fold yet
        return []
    models = [name for name in rows[0] if name not in ("repeat", "fold", "path", "label")]
    classes = json.loads((repo / "data/features/info.json").read_text())["classes"]
    index = {name: i for i, name in enumerate(classes)}
    records = []
    for key in sorted({(int(r.get("repeat", 1)), int(r["fold"])) for r in rows}):
        part = [r for r in rows if (int(r.get("repeat", 1)), int(r["fold"])) == key]
        back = np.array([view[r["path"]] == "back" for r in part])
        labels = np.array([index[r["label"]] for r in part])
        for model in models:
            predicted = np.array([index[r[model]] for r in part])
            records.append({"repeat": key[0], "fold": key[1], "model": f"{model} (finetune_cv)", "rule": "all",
                            "back_share": round(float(back.mean()), 4),
                            **part_scores(labels, predicted, back, len(classes))})
    return records


def table(records):
    """Markdown: per model and rule, mean ± sd over the folds on all, non-back and back held-out photos, with the
    paired per-fold differences to rule `all` on the same photos, and abstaining's gain (the rule's score on the
    non-back photos minus its score on all); the held-out share of back views."""
    by = {}
    for r in records:
        rule = f"weight {r['weight']}" if r["rule"] == "weight" else r["rule"]
        by.setdefault((r["model"], rule), {})[(r["repeat"], r["fold"])] = r
    lines = ["| model | training | folds | all held-out | paired diff. | not back views (abstain) | paired diff. | "
             "abstain - all | back views |", "|---|---|---|---|---|---|---|---|---|"]
    for (model, rule), folds_ in by.items():
        keys = sorted(folds_)
        base = by.get((model, "all"), {})
        cells = []
        for part in ("all", "not_back"):
            cells.append(stat([folds_[k][part] for k in keys]))
            cells.append(stat([folds_[k][part] - base[k][part] for k in keys], True) if rule != "all" else "-")
        cells.append(stat([folds_[k]["not_back"] - folds_[k]["all"] for k in keys], True))
        lines.append(f"| {model} | {rule} | {len(keys)} | " + " | ".join(cells)
                     + f" | {stat([folds_[k]['back'] for k in keys])} |")
    shares = list({(r["repeat"], r["fold"]): r["back_share"] for r in records}.values())
    lines.append(f"\nBack views among the held-out photos: {stat(shares)} (abstain's coverage is the rest).")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--models", nargs="+", default=["baseline", "head"], choices=["baseline", "head"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    parser.add_argument("--weight", type=float, default=0.5, help="the back views' loss weight under rule `weight`")
    parser.add_argument("--table", action="store_true", help="print the tables of REPO's results and stop")
    args = parser.parse_args()
    if not 0 < args.weight <= 1:
        raise SystemExit(f"--weight is the back views' loss weight, in (0, 1]; got {args.weight}")
    if args.table:
        records = [json.loads(line) for line in (args.repo / RESULTS).read_text().splitlines()]
        if (args.repo / FINETUNED_OOF).is_file():
            records += finetuned_records(args.repo)
        print(table(records))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    run(args.repo, args.models, args.rules, args.folds, args.repeats, args.weight, logging.getLogger("backview_cv"))


if __name__ == "__main__":
    main()
