"""Stage `extract`: run the frozen backbone once over every prepared image and keep the features.

The only stage that runs the backbone: the head then trains in seconds on the cached vectors instead
of re-running the backbone every epoch (fashion/features/extraction.py). With `features.cache`, each
image's features are also kept in .cache/features, so a later run computes only new images; with
`features.engine: ray` they are computed by a pool of Ray actors. The outputs are the same.

Writes data/features/: <split>.npz (features, labels, rows) per split and info.json, as one folder.
"""

from fashion.errors import run_stage
from fashion.features.extraction import extract
from fashion.params import load_params
from fashion.paths import Paths


def main():
    extract(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
