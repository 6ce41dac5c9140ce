"""Stage `resample`: SMOTE on the training features only, to balance the classes.

Validation and test features are never touched: the head is judged on the real class
balance. With `smote.enabled: false` the training features pass through unchanged, so
`dvc exp run -S smote.enabled=false` compares the two honestly.
"""

from fashion.errors import run_stage
from fashion.features.smote import resample
from fashion.params import load_params
from fashion.paths import Paths


def main():
    resample(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
