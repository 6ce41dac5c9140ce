"""Stage `suspects`: the train and validation photos whose label looks wrong, to look at first.

    python -m stages.suspects              the stage: writes metrics/suspects.csv and plots/suspects.png
    python -m stages.suspects --top 30     prints the 30 worst suspects' paths (relative to data.path), one a
                                           line, for `>> exclude.txt`; photos the exclude file already decides
                                           on (excluded or kept on review) are left out

How suspects are found: fashion/evaluation/suspects.py (cleanlab over crossval's out-of-fold probabilities).
"""

from fashion.errors import run_stage
from fashion.evaluation.suspects import run
from fashion.paths import Paths


def main(argv=None, paths=Paths()):
    run(argv, paths)


if __name__ == "__main__":
    run_stage(main)
