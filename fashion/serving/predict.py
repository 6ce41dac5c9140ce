"""The prediction command (`python -m stages.predict`): arguments, the model to use, the exit status."""

import argparse
import logging
import sys

from fashion.errors import EXIT_USER_ERROR
from fashion.params import PARAMS_FILE
from fashion.paths import Paths
from fashion.serving.classify import (
    DEFAULT_THRESHOLD,
    KINDS,
    best_model,
    classify,
    load_classifier,
    model_path,
    settings_from_params,
)
from fashion.serving.table import FORMATS, find_images, render

log = logging.getLogger(__name__)


EXIT_SOME_FAILED = 1


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m stages.predict",
        description="Classify photos with the trained models. Exit status: 0 all classified, "
                    "1 some files could not be classified (see their error), 2 nothing could be done "
                    "(no model, no images, or not one file could be classified).")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (read recursively)")
    parser.add_argument("--model", choices=KINDS,
                        help="cnn, head or finetuned (when fine-tuning is on); default: the better one by the last evaluation (metrics/test.json)")
    parser.add_argument("--threshold", type=float,
                        help=f"warn below this top probability; default: evaluate.confidence_threshold "
                             f"in {PARAMS_FILE} ({DEFAULT_THRESHOLD} without it)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    parser.add_argument("--models-dir", default=str(Paths().models), help="where the trained models are (default: models)")
    parser.add_argument("--metrics", default=str(Paths().test),
                        help="the evaluation that picks the default model (default: metrics/test.json)")
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


def run(argv=None, out=sys.stdout):
    """The command without the process around it: returns the exit status."""
    args = parse_args(argv)
    threshold, limits = settings_from_params()
    if args.threshold is not None:
        threshold = args.threshold
    kind = args.model or best_model(args.metrics) or "head"
    entries = find_images(args.paths)
    classifier = load_classifier(kind, args.models_dir)
    if classifier.random_weights:
        log.warning("%s", classifier.random_weights_warning())
    log.info("classifying %d file(s) with the %s", len(entries), classifier.title)
    if args.format != "table":  # the table says it in its heading
        log.info("the %s was %s", classifier.title, classifier.trained_on)
    results = classify(classifier, entries, threshold, args.batch_size, limits)
    out.write(render(results, args.format, f"{classifier.title} ({model_path(kind, args.models_dir)})",
                     classifier.trained_on))
    failed = sum(1 for r in results if r["error"])
    if failed == len(results):
        print(f"none of the {len(results)} file(s) could be classified (see their error)", file=sys.stderr)
        return EXIT_USER_ERROR
    if failed:
        print(f"{failed} of {len(results)} file(s) could not be classified (see their error)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0
