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
from fashion.serving.decision import load_rule
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
                        help="cnn, head or finetuned (when fine-tuning is on); default: the best by cross-validation (metrics/cv.json: head or finetuned), else head")
    parser.add_argument("--threshold", type=float,
                        help="answer automatically at or above this top probability (decision auto, else review); "
                             "default: the model's own, chosen for evaluate.target_accuracy by the decide stage "
                             f"(models/decisions/); without one evaluate.confidence_threshold in {PARAMS_FILE} "
                             f"({DEFAULT_THRESHOLD} without it)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    parser.add_argument("--models-dir", default=str(Paths().models), help="where the trained models are (default: models)")
    parser.add_argument("--metrics", default=str(Paths().test),
                        help="the last evaluation, shown with the answers (default: metrics/test.json); cv.json beside it picks the default model")
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


def load_for_prediction(model, models_dir, metrics, threshold=None):
    """(classifier, its DecisionRule, ImageLimits) for predict and tag: --model or the best by cross-validation
    (best_model), the model's own threshold unless one is given, with a warning where the model has none."""
    fallback, limits = settings_from_params()
    kind = model or best_model(metrics) or "head"
    classifier = load_classifier(kind, models_dir)
    if classifier.random_weights:
        log.warning("%s", classifier.random_weights_warning())
    rule = load_rule(kind, models_dir, fallback, threshold)
    if rule.rule is None and threshold is None:
        log.warning("the %s has no decision rule (models/decisions/%s.json): using %s", classifier.title, kind,
                    rule.describe())
    if rule.familiarity is None:
        log.warning("no novelty reference (models/decisions/familiar.json): unfamiliar photos are not told; "
                    "run `dvc repro`")
    return classifier, rule, limits


def run(argv=None, out=sys.stdout):
    """The command without the process around it: returns the exit status."""
    args = parse_args(argv)
    classifier, rule, limits = load_for_prediction(args.model, args.models_dir, args.metrics, args.threshold)
    entries = find_images(args.paths)
    log.info("classifying %d file(s) with the %s", len(entries), classifier.title)
    if args.format != "table":  # the table says it in its heading
        log.info("the %s was %s", classifier.title, classifier.trained_on)
    results = classify(classifier, entries, rule, args.batch_size, limits)
    out.write(render(results, args.format, f"{classifier.title} ({model_path(classifier.kind, args.models_dir)})",
                     classifier.trained_on, rule.describe()))
    failed = sum(1 for r in results if r["error"])
    if failed == len(results):
        print(f"none of the {len(results)} file(s) could be classified (see their error)", file=sys.stderr)
        return EXIT_USER_ERROR
    if failed:
        print(f"{failed} of {len(results)} file(s) could not be classified (see their error)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0
