"""Stage `extract`: run the frozen backbone once over every prepared image and keep the features.

The only stage that runs the backbone: the head then trains in seconds on the cached vectors instead
of re-running the backbone every epoch (fashion/features/extraction.py). With `features.cache`, each
image's features are also kept in .cache/features, so a later run computes only new images; with
`features.engine: ray` they are computed by a pool of Ray actors. The outputs are the same.

Writes data/features/: <split>.npz (features, labels, rows) per split and info.json, as one folder.
"""

import logging

import numpy as np

from fashion.atomic import atomic_dir, check_writable, write_json
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.errors import run_stage
from fashion.features.extraction import backbone_features
from fashion.features.store import INFO_FILE
from fashion.params import load_params
from fashion.paths import Paths

log = logging.getLogger(__name__)


def extract(params, paths=Paths()):
    check_writable(paths.features)
    extractor, summary, preprocessing, splits, images, seconds = backbone_features(params, paths.prepared,
                                                                                    paths.feature_cache)
    with atomic_dir(paths.features) as tmp:
        for split, (rows, labels, features) in splits.items():
            log.info("%s: %d images", split, len(rows))
            np.savez(tmp / f"{split}.npz", features=features, labels=labels, rows=rows)
        write_json(tmp / INFO_FILE, {
            "classes": summary["classes"],
            Preprocessing.RECORD_KEY: preprocessing.to_record(),
            BackboneRecipe.RECORD_KEY: extractor.recipe.to_record(),
            "weights_requested": params["features"]["weights"],
            "feature_dim": extractor.dim,
            "images": images, "seconds": round(seconds, 2),
            "images_per_second": round(images / seconds, 1) if seconds else None,
        })
    return extractor


def main():
    extract(load_params())


if __name__ == "__main__":
    run_stage(main)
