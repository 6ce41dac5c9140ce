"""Stage `suspects`: the train and validation photos whose label looks wrong, to look at first.

    python -m stages.suspects              the stage: writes metrics/suspects.csv and plots/suspects.png
    python -m stages.suspects --top 30     prints the 30 worst suspects' paths (relative to data.path), one a
                                           line, for `>> exclude.txt`; photos the exclude file already decides
                                           on (excluded or kept on review) are left out

How suspects are found: fashion/evaluation/suspects.py (cleanlab over crossval's out-of-fold probabilities).
"""

import argparse
import sys

from fashion.errors import PipelineError, run_stage
from fashion.evaluation.suspects import suspects, top_paths
from fashion.params import load_params
from fashion.paths import Paths


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m stages.suspects", description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, metavar="N",
                        help="print the N worst suspects' paths not yet in data.exclude, one a line, and exit")
    args = parser.parse_args(argv)
    if args.top is not None and args.top < 1:
        parser.error(f"--top must be 1 or more, got {args.top}")
    return args


def main(argv=None, paths=Paths()):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.top is None:
        suspects(paths)
        return
    data = load_params().data
    if not paths.suspects.is_file():
        raise PipelineError(f"{paths.suspects} not found; run `dvc repro` (its suspects stage) first")
    for path in top_paths(args.top, paths.suspects, data.exclude, data.path):
        print(path)


if __name__ == "__main__":
    run_stage(main)
