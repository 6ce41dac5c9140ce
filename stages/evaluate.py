"""Stage `evaluate`: every model and the baseline on the held-out test split, as DVC metrics and plots
(fashion/evaluation/evaluate.py: what it writes, and why predictions and labels cannot fall out of step).
"""

from fashion.errors import run_stage
from fashion.evaluation.evaluate import evaluate
from fashion.params import load_params
from fashion.paths import Paths


def main():
    evaluate(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
