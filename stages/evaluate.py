"""Stage `evaluate`: every model and the baseline on the held-out test split, as DVC metrics and plots.

Predictions and labels come from the same ordered arrays: the test rows of the manifest (for the CNN,
read from the image store in that order) and the test features of the extract stage. Nothing is
shuffled, so row i of the predictions is row i of the labels by construction.

The models are the custom CNN, the head, the fine-tuned backbone when fine-tuning is on (when off,
its files say so and its metrics file is empty) and the baseline. Writes metrics/<model>.json (the
headline numbers `dvc metrics show` lists), metrics/test.json (every score, with 95 % intervals),
metrics/per_class.json, metrics/report.md and, per model, plots/<model>/predictions.csv plus
confusion.png, curves.png and mistakes.png (fashion/evaluation/: scores, report, plots).
"""

from fashion.errors import run_stage
from fashion.evaluation.evaluate import evaluate
from fashion.params import load_params
from fashion.paths import Paths


def main():
    evaluate(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
