"""Tag every photo of an unlabelled folder: a neckline and a decision for each, in a CSV.

    python -m stages.tag FOLDER [--output tags.csv] [--model cnn|head|finetuned] [--threshold T] [--engine local|ray]

Each photo goes through the prediction command's own code (fashion/serving/), and gets `decision`: auto (the
model's top probability reaches the threshold the decide stage chose for evaluate.target_accuracy), review
(below it) or unfamiliar (unlike the training photos). Prints how many of each, at what expected accuracy.
A run that is stopped resumes where it was (fashion/serving/tagging.py). docs/tagging.md: the workflow.

Exit status: 0 every photo was tagged; 1 some files could not be (their `error` says why); 2 nothing could be
done (no trained model, no images, not one file usable, bad arguments).
"""

import logging

from fashion.errors import run_stage
from fashion.serving.tagging import run


def main(argv=None):
    return run(argv)


if __name__ == "__main__":
    run_stage(main, level=logging.INFO)
