"""Stage `crossval`: the numbers to choose by, never the test split.

Repeated stratified k-fold over the train and validation features (grouped by item when split.group
is set): in every fold the head is trained as train_head trains it (SMOTE on the fold's training part
only) and the baseline fitted on the same part, both scored on the held-out fold
(fashion/evaluation/crossval.py). They read the cached features. With finetune.enabled the fine-tuned
backbone is trained in every fold too, from the fold's head and the prepared images, as the finetune
stage trains it (fashion/evaluation/crossval_finetuned.py).

Writes metrics/cv.json (mean and standard deviation of each metric per model), metrics/cv_folds.csv
(one row per fold and model), metrics/cv_predictions.csv (every train and validation photo's
out-of-fold probabilities from the model CV ranks highest, which the suspects stage reads) and
metrics/cv_oof.csv (the same from every model, one block of rows per model).
"""

from fashion.errors import run_stage
from fashion.evaluation.crossval import crossval
from fashion.params import load_params
from fashion.paths import Paths


def main():
    crossval(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
