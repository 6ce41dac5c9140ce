"""Stage `resample`: SMOTE on the training features only, to balance the classes.

Validation and test features are never touched: the head is judged on the real class
balance. With `smote.enabled: false` the training features pass through unchanged, so
`dvc exp run -S smote.enabled=false` compares the two honestly.
"""

import logging

import numpy as np

from fashion.atomic import atomic_dir, check_writable, write_json
from fashion.errors import run_stage
from fashion.features.smote import smote_resample
from fashion.features.store import load_split, read_info
from fashion.params import load_params
from fashion.paths import Paths

log = logging.getLogger(__name__)


def resample(params, paths=Paths()):
    features_dir, out_dir, counts_path = paths.features, paths.resampled, paths.smote
    check_writable(out_dir, counts_path)
    features, labels = load_split(features_dir, "train")
    classes = read_info(features_dir)["classes"]
    smote = params["smote"]
    if smote["enabled"]:
        new_features, new_labels, report = smote_resample(
            features, labels, smote["k_neighbors"], params["seed"], classes)
    else:
        new_features, new_labels, report = features, labels, {"warning": None}
    with atomic_dir(out_dir) as tmp:
        np.savez(tmp / "train.npz", features=new_features, labels=new_labels)
    before = np.bincount(labels, minlength=len(classes))
    after = np.bincount(new_labels, minlength=len(classes))
    write_json(counts_path, {
        "enabled": smote["enabled"], **report,
        "train_before": {name: int(n) for name, n in zip(classes, before)},
        "train_after": {name: int(n) for name, n in zip(classes, after)},
        "synthetic_samples": int(len(new_labels) - len(labels)),
    })
    log.info("train features %d -> %d (%s)", len(labels), len(new_labels),
             "SMOTE" if smote["enabled"] else "SMOTE disabled")


def main():
    resample(load_params())


if __name__ == "__main__":
    run_stage(main)
