"""Classify new photos with the trained models, and warn when a prediction should not be trusted.

    python -m stages.predict PATH... [--model cnn|head|finetuned] [--threshold 0.8] [--format table|json|csv]

PATH is an image file or a folder (read recursively). Every photo goes through exactly what
the training data went through: `stages.images.load_image` (the decoder and resizing of the
prepare stage, at the size, resize mode and region the model was trained with), then the CNN, or
the same frozen backbone with its `preprocess_input` and the head (`stages.classify`).

Exit status: 0 when every image was classified; 1 when some could not be (their `error`
says why; the others still get results); 2 when nothing could be done (no trained model,
no images found, bad arguments).
"""

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path

from stages.classify import DEFAULT_THRESHOLD, KINDS, LOW_CONFIDENCE, MODELS_DIR, TEST_METRICS
from stages.classify import best_model, classify, load_classifier, settings_from_params
from stages.errors import PipelineError, run_stage
from stages.images import SUPPORTED_EXTENSIONS, walk_image_files
from stages.params import PARAMS_FILE

log = logging.getLogger("predict")

EXIT_SOME_FAILED = 1
FORMATS = ("table", "json", "csv")


# --- what to classify ------------------------------------------------------------------

def find_images(paths):
    """[(shown path, file or None, error or None)] for the inputs, folders expanded recursively, in order.

    A missing path or an unsupported file named directly becomes an entry with an error; files in
    a folder that are not images are passed over (as the prepare stage does). No images at all: an error.
    """
    entries, empty_folders = [], []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            skipped = []
            found = [(str(file), file, None) for file in walk_image_files(path, path, skipped)]
            if not found:
                empty_folders.append(given)
            entries += found
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_EXTENSIONS:
                entries.append((given, path, None))
            else:
                entries.append((given, None, f"unsupported file type '{path.suffix}'; supported: "
                                             f"{', '.join(SUPPORTED_EXTENSIONS)}"))
        else:
            entries.append((given, None, "no such file or folder"))
    for folder in empty_folders:
        log.warning("folder %s has no image files (%s)", folder, ", ".join(SUPPORTED_EXTENSIONS))
    if not entries:
        raise PipelineError(f"no images to classify in {', '.join(map(str, paths))}: the folder(s) have no "
                            f"image files ({', '.join(SUPPORTED_EXTENSIONS)})")
    return entries


# --- output -----------------------------------------------------------------------------------

def render(results, fmt):
    if fmt == "json":
        return json.dumps(results, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "label", "probability", "top3", "low_confidence", "error"])
        for r in results:
            top3 = ";".join(f"{label}:{p:.4f}" for label, p in r["top3"])
            writer.writerow([r["path"], r["label"] or "", "" if r["probability"] is None else f"{r['probability']:.6f}",
                             top3, "" if r["low_confidence"] is None else str(r["low_confidence"]).lower(),
                             r["error"] or ""])
        return buffer.getvalue()
    return _table(results)


def _table(results):
    rows = [("path", "label", "prob", "top 3", "note")]
    for r in results:
        if r["error"]:
            rows.append((r["path"], "-", "-", "-", f"error: {r['error']}"))
        else:
            top3 = ", ".join(f"{label} {p:.2f}" for label, p in r["top3"])
            rows.append((r["path"], r["label"], f"{r['probability']:.3f}", top3,
                         LOW_CONFIDENCE if r["low_confidence"] else ""))
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


# --- the command -------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m stages.predict",
        description="Classify photos with the trained models. Exit status: 0 all classified, "
                    "1 some files could not be classified (see their error), 2 nothing could be done.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (read recursively)")
    parser.add_argument("--model", choices=KINDS,
                        help="cnn, head or finetuned (when fine-tuning is on); default: the better one by the last evaluation (metrics/test.json)")
    parser.add_argument("--threshold", type=float,
                        help=f"warn below this top probability; default: evaluate.confidence_threshold "
                             f"in {PARAMS_FILE} ({DEFAULT_THRESHOLD} without it)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    parser.add_argument("--models-dir", default=str(MODELS_DIR), help="where the trained models are (default: models)")
    parser.add_argument("--metrics", default=str(TEST_METRICS),
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
    threshold, max_pixels = settings_from_params()
    if args.threshold is not None:
        threshold = args.threshold
    kind = args.model or best_model(args.metrics) or "head"
    entries = find_images(args.paths)
    classifier = load_classifier(kind, args.models_dir)
    if classifier.random_weights:
        log.warning("%s", classifier.random_weights_warning())
    log.info("classifying %d file(s) with the %s", len(entries), classifier.title)
    results = classify(classifier, entries, threshold, args.batch_size, max_pixels)
    out.write(render(results, args.format))
    failed = sum(1 for r in results if r["error"])
    if failed:
        print(f"{failed} of {len(results)} file(s) could not be classified (see their error)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


def main(argv=None):
    return run(argv)


if __name__ == "__main__":
    run_stage(main, level=logging.WARNING)
