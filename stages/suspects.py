"""Stage `suspects`: the train and validation photos whose label looks wrong, to look at first.

    python -m stages.suspects              the stage: writes metrics/suspects.csv and plots/suspects.png
    python -m stages.suspects --top 30     prints the 30 worst suspects' paths (relative to data.path), one a
                                           line, for `>> exclude.txt`; photos the exclude file already decides
                                           on (excluded or kept on review) are left out

How suspects are found: fashion/evaluation/suspects.py (cleanlab over crossval's out-of-fold probabilities).
"""

import argparse
import logging
import sys

from fashion.data import dataset
from fashion.errors import PipelineError, run_stage
from fashion.evaluation.suspects import GALLERY_SIZE, plot_gallery, suspect_table, top_paths, write_table
from fashion.params import load_params
from fashion.paths import Paths

log = logging.getLogger(__name__)


def suspects(paths=Paths()):
    """Write the suspects table and gallery; return the table's rows."""
    table, classes, manifest, looked_at = suspect_table(paths.prepared, paths.cv_predictions)
    write_table(paths.suspects, table)
    with dataset.ImageStore(paths.prepared / dataset.IMAGES_FILE) as store:
        plot_gallery(paths.suspects_gallery, store, [manifest[row["path"]]["row"] for row in table[:GALLERY_SIZE]],
                     table[:GALLERY_SIZE], len(table))
    per_class = {name: sum(row["given"] == name for row in table) for name in classes}
    log.info("%d suspect photo(s) of %d train + validation photos (%s); worst first in %s, the worst %d in %s",
             len(table), looked_at, ", ".join(f"{name} {count}" for name, count in per_class.items()),
             paths.suspects, min(GALLERY_SIZE, len(table)), paths.suspects_gallery)
    if table:
        log.info("look at them: `python -m stages.serve`, then /review; or `python -m stages.suspects --top 30 "
                 ">> exclude.txt` (data.exclude) after a look")
    return table


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
    data = load_params()["data"]
    if not paths.suspects.is_file():
        raise PipelineError(f"{paths.suspects} not found; run `dvc repro` (its suspects stage) first")
    for path in top_paths(args.top, paths.suspects, data["exclude"], data["path"]):
        print(path)


if __name__ == "__main__":
    run_stage(main)
