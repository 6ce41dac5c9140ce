"""Stage `decide`: each model's decision rule, never from the test split (fashion/evaluation/decisions.py).

The confidence threshold whose answered photos reach evaluate.target_accuracy (chosen on crossval's
out-of-fold probabilities, or on the validation split for a model crossval does not cover) and the novelty
cutoff above which a photo is unfamiliar (a quantile of the validation photos' novelty). Writes
models/decisions/ (what predict, serve and tag apply) and metrics/decisions.json.
"""

from fashion.errors import run_stage
from fashion.evaluation.decisions import decide
from fashion.params import load_params
from fashion.paths import Paths


def main():
    decide(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
