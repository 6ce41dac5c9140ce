"""Stage `train_cnn`: the custom CNN (fashion/models/cnn.py), trained from scratch on the prepared images.

The model takes images exactly as data/prepared stores them and does its own resizing, augmentation
and rescaling, so prediction can never preprocess differently from training. Images stream from the
image store one batch at a time. Writes models/cnn.keras (+ models/cnn.json), plots/cnn/history.csv
and metrics/cnn_train.json.
"""

from fashion.errors import run_stage
from fashion.models.cnn import train_cnn
from fashion.params import load_params
from fashion.paths import Paths


def main():
    train_cnn(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
