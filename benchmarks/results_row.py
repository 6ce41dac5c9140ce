"""Print the README results rows of the run in the current workspace (or the folder given):
CV mean +- sd over the folds, then the test-split value with its 95 % interval, per model.

    python benchmarks/results_row.py [RUN_FOLDER] [--data necklines] [--name necklines-mobilenet-smote]
"""

import argparse
import json
from pathlib import Path

NAMES = {"head": "head", "baseline": "baseline (logistic regression)", "cnn": "custom CNN"}


def rows(folder, data, name):
    test = json.loads((Path(folder) / "metrics/test.json").read_text())
    cv = json.loads((Path(folder) / "metrics/cv.json").read_text())
    backbone = json.loads((Path(folder) / "models/head.json").read_text())["backbone"]["model"]
    out = []
    for kind in ("head", "baseline", "cnn"):
        t = test[kind]
        cells = []
        for metric in ("balanced_accuracy", "macro_f1", "accuracy"):
            cv_cell = (f"{cv[kind][f'{metric}_mean']:.3f} ± {cv[kind][f'{metric}_sd']:.3f}" if kind in cv else "-")
            low, high = t[f"{metric}_ci"]
            cells += [cv_cell, f"{t[metric]:.3f} [{low:.3f}, {high:.3f}]"]
        model = f"{backbone} {NAMES[kind]}" if kind != "cnn" else NAMES[kind]
        out.append(f"| {data} | {model} | " + " | ".join(cells) + f" | {t['test_images']} | `{name}` |")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default=".")
    parser.add_argument("--data", default="?")
    parser.add_argument("--name", default="?")
    args = parser.parse_args()
    print("\n".join(rows(args.folder, args.data, args.name)))


if __name__ == "__main__":
    main()
