"""Starting the server (`python -m stages.serve`): its options, the model and its rule, the socket, uvicorn."""

import argparse
import ipaddress
import logging

import numpy as np
import uvicorn

from fashion.paths import Paths
from fashion.serving.classify import KINDS, best_model, last_evaluation, settings_from_params
from fashion.serving.decision import load_rule
from fashion.serving.review_queue import queue_from_params
from fashion.serving.server import Limits, Service, create_app, listening_socket, load_served_model, positive
from fashion.serving.suspects_review import review_from_params

log = logging.getLogger("stages.serve")  # the command's messages carry its name: "WARNING serve: ..."


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m stages.serve",
        description="Serve the trained model: a page at / and an HTTP API (POST /predict, GET /health, "
                    "GET /model, docs at /docs).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; "
                                                           "0.0.0.0 for other machines, e.g. a phone)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    parser.add_argument("--model", choices=KINDS,
                        help="default: the best by cross-validation (metrics/cv.json: head or finetuned), else head")
    parser.add_argument("--max-upload-mb", type=positive(float), default=20.0,
                        help="largest photo accepted, in MB (default: 20)")
    parser.add_argument("--max-files", type=positive(int), default=32, help="photos per request (default: 32)")
    parser.add_argument("--models-dir", default=str(Paths().models), help="where the trained models are (default: models)")
    parser.add_argument("--metrics", default=str(Paths().test),
                        help="the last evaluation, shown with the answers (default: metrics/test.json); cv.json beside it picks the default model")
    parser.add_argument("--tags", default="tags.csv",
                        help="the tag run whose uncertain photos the review queue at /queue shows (default: tags.csv, "
                             "written by python -m stages.tag FOLDER)")
    return parser.parse_args(argv)


def run(argv=None):
    """The command without the process around it: parse the options, load the model, serve until Ctrl+C."""
    args = parse_args(argv)
    threshold, image_limits = settings_from_params()
    review = review_from_params()
    kind = args.model or best_model(args.metrics) or "head"
    with listening_socket(args.host, args.port) as sock:
        classifier = load_served_model(kind, args.models_dir)
        rule = load_rule(kind, args.models_dir, threshold)
        if rule.rule is None:
            log.warning("the %s has no decision rule (models/decisions/%s.json): %s", classifier.title, kind,
                        rule.describe())
        if classifier.random_weights:
            log.warning("%s", classifier.random_weights_warning())
        # The first call traces the model's graph: pay for it now, not in the first visitor's request.
        classifier.probabilities(np.full((1, classifier.image_size, classifier.image_size, 3), 255, np.uint8))
        service = Service(classifier, rule, image_limits, Limits(args.max_files, args.max_upload_mb),
                          last_evaluation(kind, args.metrics))
        queue = queue_from_params(args.tags, classifier.classes)
        host, port = sock.getsockname()[:2]
        log.info("serving the %s on http://%s:%d/ (%s); suspect labels to review: http://%s:%d/review "
                 "(decisions go into %s)", classifier.title, host, port, rule.describe(), host, port, review.exclude_path)
        log.info("review queue of %s%s: http://%s:%d/queue (answers go into %s)", queue.tags_path,
                 "" if queue.tags_path.is_file() else " (not written yet: python -m stages.tag FOLDER)", host, port,
                 queue.labels_path)
        log.info("the %s was %s", classifier.title, classifier.trained_on)
        if not ipaddress.ip_address(host).is_loopback:
            log.warning("listening on %s: anyone who reaches it can also change %s on /review and %s on /queue",
                        host, review.exclude_path, queue.labels_path)
        try:
            uvicorn.Server(uvicorn.Config(create_app(service, review, queue), log_level="info")).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn has shut down cleanly and hands Ctrl+C back
            pass
        finally:
            service.lane.shutdown()
