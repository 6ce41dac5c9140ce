"""Classify photos in a browser and over HTTP: the trained model behind a small web server.

    python -m stages.serve [--host 127.0.0.1] [--port 8000] [--model cnn|head|finetuned]
                           [--max-upload-mb 20] [--max-files 32]

Run it in the repository after `dvc repro` and open http://127.0.0.1:8000/. The model is loaded
once, at the start, and every photo goes through `fashion.serving.classify.classify`, the prediction
command's own code: the same decoder, the same `data.max_pixels`, `data.min_side` and `data.max_aspect`
guards, the same region and resizing, the same model, the same result records as `python -m stages.predict --format json`.

    GET  /         the page: pick, drop or photograph garments and see what the model says
    POST /predict  one or more photos in the multipart field `files`: a JSON array, one record each
    GET  /health   {"status": "ok", ...}; answers while the model is busy
    GET  /model    the model kind, its classes, the region it looks at, its test metrics
    GET  /docs     interactive API docs (Swagger UI from the fastapi-offline package: no CDN)
    GET  /review   the suspect labels (metrics/suspects.csv, the suspects stage) with their photos, and
                   keep / exclude buttons that record each decision in the exclude file (data.exclude)

The model runs on one worker thread, one request's photos at a time in batches, so the event loop
stays free for /health and for receiving the next uploads. Bad input never takes the server down:
it gets a 4xx answer `{"detail": ...}` that says what was wrong and what to do instead.
"""

import argparse
import ipaddress
import logging

import numpy as np
import uvicorn

from fashion.errors import run_stage
from fashion.paths import Paths
from fashion.serving.classify import KINDS, best_model, last_evaluation, settings_from_params
from fashion.serving.decision import load_rule
from fashion.serving.server import (
    Limits,
    Service,
    create_app,
    listening_socket,
    load_served_model,
    positive,
    review_from_params,
)

log = logging.getLogger(__name__)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m stages.serve",
        description="Serve the trained model: a page at / and an HTTP API (POST /predict, GET /health, "
                    "GET /model, docs at /docs).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; "
                                                           "0.0.0.0 for other machines, e.g. a phone)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    parser.add_argument("--model", choices=KINDS,
                        help="default: the better one by the last evaluation (metrics/test.json), else head")
    parser.add_argument("--max-upload-mb", type=positive(float), default=20.0,
                        help="largest photo accepted, in MB (default: 20)")
    parser.add_argument("--max-files", type=positive(int), default=32, help="photos per request (default: 32)")
    parser.add_argument("--models-dir", default=str(Paths().models), help="where the trained models are (default: models)")
    parser.add_argument("--metrics", default=str(Paths().test),
                        help="the evaluation that picks the default model (default: metrics/test.json)")
    return parser.parse_args(argv)


def main(argv=None):
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
        host, port = sock.getsockname()[:2]
        log.info("serving the %s on http://%s:%d/ (%s); suspect labels to review: http://%s:%d/review "
                 "(decisions go into %s)", classifier.title, host, port, rule.describe(), host, port, review.exclude_path)
        log.info("the %s was %s", classifier.title, classifier.trained_on)
        if not ipaddress.ip_address(host).is_loopback:
            log.warning("listening on %s: anyone who reaches it can also change %s on /review", host,
                        review.exclude_path)
        try:
            uvicorn.Server(uvicorn.Config(create_app(service, review), log_level="info")).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn has shut down cleanly and hands Ctrl+C back
            pass
        finally:
            service.lane.shutdown()


if __name__ == "__main__":
    run_stage(main)
