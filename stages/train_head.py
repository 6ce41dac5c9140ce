"""Stage `train_head`: a small classifier (fashion/models/head.py) on the cached backbone features.

It trains in seconds because the backbone never runs here; early stopping watches the
validation split, and the softmax temperature is fitted on it afterwards.
"""

from fashion.errors import run_stage
from fashion.models.head import train_head
from fashion.params import load_params
from fashion.paths import Paths


def main():
    train_head(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
