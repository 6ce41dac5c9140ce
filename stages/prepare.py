"""Stage `prepare`: find, validate, decode and resize the images; split them without leakage.

Reads a folder with one sub-folder per class (the generated default data set is such a folder too) or
Fashion-MNIST IDX files (fashion/data/sources.py), decodes them into the image store
(fashion/data/decoding.py), draws the split (fashion/data/split.py), drops the photos data.exclude
lists (fashion/data/exclusions.py) and adds the photos the review queue labelled (data.confirmed,
fashion/data/confirmed.py) to the training split. Writes data/prepared/ (fashion/data/dataset.py) as one folder.
Unusable files are skipped with a reason; problems that make the data set unusable as a whole stop
the stage with a message saying what to fix, and leave no output behind.
"""

from fashion.data.preparation import prepare
from fashion.errors import run_stage
from fashion.params import load_params
from fashion.paths import Paths


def main():
    prepare(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
