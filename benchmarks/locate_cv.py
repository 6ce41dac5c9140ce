"""The neckline locator chosen by cross-validation: grouped folds of train + validation, never the test split.

    python benchmarks/locate_cv.py WORK [--configs NAME ...] [--models baseline head] [--folds 5] [--repeats 3]
    python benchmarks/locate_cv.py WORK --table [--against NAME] [--subsets-from NAME]  # WORK/results.jsonl's table
    python benchmarks/locate_cv.py WORK --views NAME --models baseline head   # NAME's scores by view

For each configuration (CONFIGS: the upper 60 %, the box located under the face, other box
geometries, input size, the mirror, one and two backbones, the face detectors, data.locate auto) the library's own prepare and extract run on
the neckline photos in ../shared into WORK/NAME, laid out like a repository with its params.yaml, so that
`python benchmarks/finetune_cv.py WORK/NAME` and `python benchmarks/cnn_cv.py WORK/NAME` measure
fine-tuning and the CNN on the same crops. The baseline and the head are then scored on the crossval
stage's own folds (fashion.evaluation.crossval: folds, fold_head; fashion.models.baseline), grouped by product, every
held-out photo scored. Per fold it records the balanced accuracy on all held-out photos, on those where a
face was found, and on those where none was (they keep data.region): what a user who abstains on the
unlocated photos would get, at what coverage.

prepare's decode cache is shared by the configurations in WORK/cache. A new box geometry is a new cache
folder, so the product would run the detector again; here the detector's answer for a photo is the same
whatever the box, so it is kept in memory per decoded photo and detector (`remember_faces`) and run once
per photo. A configuration named in DETECTORS runs with that face detector instead of
fashion.data.locate.FACE_DETECTOR (its own decode-cache folder: the fingerprint holds the detector).
"""

import argparse
import hashlib
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
from fashion.data import dataset, faces, locate  # noqa: E402
from fashion.models.baseline import baseline_probabilities, fit_baseline  # noqa: E402
from fashion.evaluation.crossval import fold_head  # noqa: E402
from fashion.evaluation.folds import folds, pooled_features, pooled_paths  # noqa: E402
from fashion.features.extraction import extract  # noqa: E402
from fashion.features.store import INFO_FILE, load_split_rows, read_info  # noqa: E402
from fashion.evaluation.intervals import headline  # noqa: E402
from fashion.params import validate  # noqa: E402
from fashion.data.preparation import prepare  # noqa: E402

SHARED = REPO.parent / "shared"
W = SHARED / "weights"
MOBILENET = str(W / "mobilenet_1.0_224_no_top.weights.h5")
MOBILENET_V2 = str(W / "mobilenet_v2_1.0_224_no_top.weights.h5")
UPPER = {"top": 0.0, "bottom": 0.6, "left": 0.0, "right": 1.0}
BOX = {"top": 0.8, "bottom": 2.6, "half_width": 1.4}
# The neckline photos as benchmarks/real_data.sh reads them: grouped by product, 224 px, cropped square.
NECKLINES = {"data.source": "folder", "data.path": str(SHARED / "data/necklines"), "data.image_size": 224,
             "data.resize": "crop", "data.region": UPPER, "split.group": r"-(\d+)-\d+\.[a-z]+$",
             "features.mirror": False, "smote.enabled": True}
ONE = {"model": "mobilenet", "features.weights": MOBILENET, "features.alpha": 1.0}
TWO = {"model": "mobilenet+mobilenet_v2", "features.alpha": 1.0,
       "features.weights": {"mobilenet": MOBILENET, "mobilenet_v2": MOBILENET_V2}}
FACE = {"data.locate": "face", "data.locate_box": BOX}
TIGHT = {"top": 0.9, "bottom": 2.2, "half_width": 1.1}
CONFIGS = {
    "upper60": {**TWO},                                   # no locator: the upper 60 %, two backbones
    "upper60_one": {**ONE},
    "face": {**TWO, **FACE},                              # the box under the face (the first guess)
    "face_one": {**ONE, **FACE},
    "face_tight": {**TWO, **FACE, "data.locate_box": TIGHT},
    "face_wide": {**TWO, **FACE, "data.locate_box": {"top": 0.6, "bottom": 3.2, "half_width": 1.8}},
    "face_low": {**TWO, **FACE, "data.locate_box": {"top": 1.0, "bottom": 3.0, "half_width": 1.4}},
    "face_tighter": {**TWO, **FACE, "data.locate_box": {"top": 1.0, "bottom": 2.0, "half_width": 0.9}},
    "face_tight_high": {**TWO, **FACE, "data.locate_box": {"top": 0.7, "bottom": 2.0, "half_width": 1.1}},
    "face_pad": {**TWO, **FACE, "data.resize": "pad"},
    # the chosen box (face_tight) with the mirror, at 160 px, and with one backbone
    "tight_mirror": {**TWO, **FACE, "data.locate_box": TIGHT, "features.mirror": True},
    "tight_160": {**TWO, **FACE, "data.locate_box": TIGHT, "data.image_size": 160},
    "tight_one": {**ONE, **FACE, "data.locate_box": TIGHT},
    "face_160": {**TWO, **FACE, "data.image_size": 160},
    "face_mirror": {**TWO, **FACE, "features.mirror": True},
    # the chosen box with MTCNN as the face detector, and data.locate auto (face, pose, close-up)
    "tight_mtcnn": {**TWO, **FACE, "data.locate_box": TIGHT},
    "auto_tight": {**TWO, "data.locate": "auto", "data.locate_box": TIGHT},
    "tight_mtcnn_one": {**ONE, **FACE, "data.locate_box": TIGHT},
    "auto_tight_one": {**ONE, "data.locate": "auto", "data.locate_box": TIGHT},
}
# Configurations that run with another face detector than fashion.data.locate.FACE_DETECTOR.
DETECTORS = {"tight_mtcnn": "mtcnn", "tight_mtcnn_one": "mtcnn"}


def remember_faces():
    """Run the face detector once per decoded photo, whatever the box geometry (see the docstring)."""
    detect, seen = faces.detect_faces, {}

    def remembered(rgb, detector):
        key = (hashlib.sha256(rgb.tobytes() + str(rgb.shape).encode()).hexdigest(), detector)
        if key not in seen:
            seen[key] = detect(rgb, detector)
        return seen[key]

    faces.detect_faces = remembered


def params_for(name):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in {**NECKLINES, **CONFIGS[name]}.items():
        section = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            section = section[key]
        section[leaf] = value
    return validate(params)


def build(work, name, log):
    """WORK/NAME with data/prepared, data/features and params.yaml of the configuration (reused when there)."""
    folder = work / name
    params = params_for(name)
    if not (Paths(folder).features / INFO_FILE).is_file():
        started = time.perf_counter()
        prepare(params, Paths(folder, cache=work / "cache"))
        prepared = time.perf_counter()
        extract(params, Paths(folder, cache=work / "cache"))
        log.info("%s: prepare %.0f s, extract %.0f s", name, prepared - started, time.perf_counter() - prepared)
    (folder / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
    return params, folder


def located_mask(folder, features_dir):
    """Whether a face was found, per pooled train + validation row (in pooled_features' order)."""
    located = {r["row"]: r["located"] == "true" for r in dataset.read_manifest(Paths(folder).prepared)}
    rows = np.concatenate([load_split_rows(features_dir, split)[2] for split in ("train", "validation")])
    return np.array([located[int(row)] for row in rows])


def score(params, folder, models, n_folds, repeats, log):
    """One record per (repeat, fold, model): balanced accuracy on all held-out photos, located, not located.
    Every held-out photo's prediction goes to WORK/NAME/oof-<model>.csv (repeat, path, label, predicted)."""
    features_dir, prepared_dir = Paths(folder).features, Paths(folder).prepared
    x, y, groups = pooled_features(features_dir, prepared_dir)
    located = located_mask(folder, features_dir)
    paths = pooled_paths(features_dir, prepared_dir)
    classes = read_info(features_dir)["classes"]
    seed, records = params.seed, []
    oof = {model: open(folder / f"oof-{model}.csv", "w") for model in models}
    for handle in oof.values():
        handle.write("repeat,fold,path,label,predicted\n")
    for repeat, fold, train, held in folds(y, groups, n_folds, repeats, seed):
        fold_seed = (seed + 1000 * repeat + fold) % 2**32
        predicted = {}
        if "head" in models:
            head, _, _ = fold_head(params, classes, x, y, groups, train, fold_seed)
            predicted["head"] = head.predict(x[held], batch_size=256, verbose=0).argmax(axis=1)
        if "baseline" in models:
            predicted["baseline"] = baseline_probabilities(fit_baseline(x[train], y[train], fold_seed), x[held],
                                                           len(classes)).argmax(axis=1)
        for model, guess in predicted.items():
            oof[model].writelines(f"{repeat + 1},{fold + 1},{paths[i]},{classes[y[i]]},{classes[g]}\n"
                                  for i, g in zip(held, guess))
            oof[model].flush()
            record = {"repeat": repeat + 1, "fold": fold + 1, "model": model, "held_out": int(len(held)),
                      "located_share": round(float(located[held].mean()), 4)}
            for part, mask in (("all", np.ones(len(held), bool)), ("located", located[held]),
                               ("not_located", ~located[held])):
                if mask.any():
                    scores = headline(y[held][mask], guess[mask], len(classes))
                    record[part] = round(scores["balanced_accuracy"], 4)
                    record[f"{part}_accuracy"] = round(scores["accuracy"], 4)
            records.append(record)
            log.info("%s", record)
    for handle in oof.values():
        handle.close()
    return records


def face_subsets(work, config, model, subsets_from="face"):
    """{(repeat, fold): (balanced accuracy where the `subsets_from` configuration found a face, where it found
    none)} from WORK/config/oof-<model>.csv: every configuration scored on the same photos."""
    from sklearn.metrics import balanced_accuracy_score

    located = {r["path"]: r["located"] == "true" for r in dataset.read_manifest(Paths(work / subsets_from).prepared)}
    rows = [line.split(",") for line in (work / config / f"oof-{model}.csv").read_text().splitlines()[1:]]
    out = {}
    for key in sorted({(int(r[0]), int(r[1])) for r in rows}):
        fold = [r for r in rows if (int(r[0]), int(r[1])) == key]
        parts = [[r for r in fold if located[r[2]] == wanted] for wanted in (True, False)]
        out[key] = tuple(balanced_accuracy_score([r[3] for r in part], [r[4] for r in part]) for part in parts)
    return out


def view_scores(work, config, model):
    """Markdown lines: accuracy (mean ± sd over the folds) and pooled balanced accuracy of WORK/config's held-out
    photos by their view in its manifest (data.locate auto: front, back, unknown)."""
    from sklearn.metrics import balanced_accuracy_score

    view = {r["path"]: r["view"] or "unknown" for r in dataset.read_manifest(Paths(work / config).prepared)}
    rows = [line.split(",") for line in (work / config / f"oof-{model}.csv").read_text().splitlines()[1:]]
    lines = []
    for wanted in ("front", "back", "unknown"):
        part = [r for r in rows if view[r[2]] == wanted]
        accuracy = [np.mean([r[3] == r[4] for r in part if (r[0], r[1]) == key])
                    for key in sorted({(r[0], r[1]) for r in part})]
        lines.append(f"| {config} | {model} | {wanted} | {len(part) // len({r[0] for r in rows})} | "
                     f"{np.mean(accuracy):.3f} ± {np.std(accuracy, ddof=1):.3f} | "
                     f"{balanced_accuracy_score([r[3] for r in part], [r[4] for r in part]):.3f} |")
    return lines


def table(results, work, against=None, subsets_from="face"):
    """Markdown: mean ± sd per configuration and model, the paired difference to the same folds of upper60 (of
    upper60_one for a configuration with one backbone, named *_one; of `against` when given), and
    the balanced accuracy on the photos where the `face` configuration found a face and where it found none."""
    import warnings

    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    by = {}
    for r in results:
        by.setdefault((r["config"], r["model"]), {})[(r["repeat"], r["fold"])] = r
    lines = [f"| configuration | model | folds | balanced acc. | paired diff. to {against or 'upper60(_one)'} | "
             "photos with a face found | "
             "photos with no face |", "|---|---|---|---|---|---|---|"]

    def stat(values):
        return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else "-"

    for (config, model), folds_ in by.items():
        reference = against or ("upper60_one" if config.endswith("_one") else "upper60")
        base = by.get((reference, model), {})
        keys = sorted(folds_)
        paired = [folds_[k]["all"] - base[k]["all"] for k in keys if k in base] if config != reference else []
        subsets = face_subsets(work, config, model, subsets_from) if Paths(work / subsets_from).prepared.is_dir() \
            else {}
        lines.append(f"| {config} | {model} | {len(keys)} | {stat([folds_[k]['all'] for k in keys])} | "
                     f"{stat(paired) if paired else '-'} | {stat([v[0] for v in subsets.values()])} | "
                     f"{stat([v[1] for v in subsets.values()])} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--models", nargs="+", default=["baseline"], choices=["baseline", "head"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--table", action="store_true", help="print the table of WORK/results.jsonl and stop")
    parser.add_argument("--against", help="with --table: the configuration the paired differences are to")
    parser.add_argument("--views", metavar="NAME", help="print NAME's scores by view (data.locate auto) and stop")
    parser.add_argument("--subsets-from", default="face",
                        help="with --table: the face configuration whose found / not found faces split the photos")
    args = parser.parse_args()
    results_path = args.work / "results.jsonl"
    if args.views:
        print("| configuration | model | view | photos | accuracy | balanced acc. (pooled) |\n|---|---|---|---|---|---|")
        print("\n".join(line for model in args.models for line in view_scores(args.work, args.views, model)))
        return
    if args.table:
        print(table([json.loads(line) for line in results_path.read_text().splitlines()], args.work, args.against,
                    args.subsets_from))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("locate_cv")
    args.work.mkdir(parents=True, exist_ok=True)
    remember_faces()
    chosen = locate.FACE_DETECTOR
    for name in args.configs:
        locate.FACE_DETECTOR = DETECTORS.get(name, chosen)
        params, folder = build(args.work, name, log)
        for record in score(params, folder, args.models, args.folds, args.repeats, log):
            with open(results_path, "a") as out:
                out.write(json.dumps({"config": name, **record}) + "\n")


if __name__ == "__main__":
    main()
