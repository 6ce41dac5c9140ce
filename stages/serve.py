"""Classify photos in a browser and over HTTP: the trained model behind a small web server.

    python -m stages.serve [--host 127.0.0.1] [--port 8000] [--model cnn|head|finetuned]
                           [--max-upload-mb 20] [--max-files 32]

Run it in the repository after `dvc repro` and open http://127.0.0.1:8000/. The model is loaded
once, at the start, and every photo goes through `stages.classify.classify`, the prediction
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
import asyncio
import ipaddress
import json
import logging
import os
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
import uvicorn
from fastapi import File, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.datastructures import FormData, Headers
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from stages.classify import (
    KINDS,
    LOW_CONFIDENCE,
    MODELS_DIR,
    TEST_METRICS,
    best_model,
    classify,
    load_classifier,
    settings_from_params,
)
from stages.errors import PipelineError, run_stage
from stages.exclusions import DECISIONS, SUSPECTS_CSV, decisions, read_suspects, record_decision
from stages.params import PARAMS_FILE, load_params

log = logging.getLogger("serve")

STATIC_DIR = Path(__file__).with_name("static")
FIELD = "files"
MB = 1024 * 1024
BATCH_SIZE = 32
FORMATS = "JPEG, PNG, WebP, BMP, GIF or TIFF"


class Limits:
    """What one request may send: photos per request, bytes per photo, and so bytes per request."""

    def __init__(self, max_files, max_upload_mb):
        self.max_files, self.max_upload_mb = max_files, max_upload_mb
        self.max_upload_bytes = int(max_upload_mb * MB)
        # every photo at its largest, plus room for the multipart headers around them
        self.max_body_bytes = max_files * self.max_upload_bytes + MB


class ModelLane:
    """The model's one worker thread: requests queue for it, so inference never blocks the event loop.

    Keras models are not meant to be called from several threads at once, and on a few cores a second
    concurrent batch only slows the first; one lane keeps every request's photos together in batches.
    Photos are decoded on a pool that lives as long as the server (fresh threads per request would
    each leave a little of OpenCV's per-thread memory behind: the server's RSS would creep up).
    """

    def __init__(self):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.decoders = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="decode")
        self.requests = 0  # running or waiting; changed on the event loop only

    def shutdown(self):
        for pool in (self.executor, self.decoders):
            pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, function, *args):
        self.requests += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.requests -= 1


class Service:
    """The loaded model and the settings every request is classified with."""

    def __init__(self, classifier, threshold, image_limits, limits, test_metrics=None):
        self.classifier, self.threshold, self.image_limits = classifier, threshold, image_limits
        self.limits, self.test_metrics = limits, test_metrics
        self.lane = ModelLane()

    def describe(self):
        """What GET /model answers, and what the page draws from."""
        return {"kind": self.classifier.kind, "title": self.classifier.title, "classes": self.classifier.classes,
                "random_weights": self.classifier.random_weights,
                "preprocessing": self.classifier.preprocessing.to_record(),
                "confidence_threshold": self.threshold, "low_confidence_warning": LOW_CONFIDENCE,
                "limits": {"max_files": self.limits.max_files, "max_upload_mb": self.limits.max_upload_mb,
                           "max_pixels": self.image_limits.max_pixels, "min_side": self.image_limits.min_side,
                           "max_aspect": self.image_limits.max_aspect},
                "test_metrics": self.test_metrics}

    def classify_uploads(self, uploads):
        """Result records for the uploaded photos, in order (runs on the model's thread).

        The uploads are written to a temporary folder and go through the prediction command's
        `classify`, so a photo gets exactly the records `stages.predict` gives for its file.
        """
        with tempfile.TemporaryDirectory(prefix="serve-") as folder:
            entries = []
            for number, upload in enumerate(uploads):
                path = Path(folder) / str(number)  # never the client's name as a path
                upload.file.seek(0)
                with open(path, "wb") as out:
                    shutil.copyfileobj(upload.file, out)
                entries.append((upload.filename or f"file {number + 1}", path, None))
            return classify(self.classifier, entries, self.threshold, BATCH_SIZE, self.image_limits,
                            pool=self.lane.decoders)

    def check_uploads(self, uploads):
        """The 413 for a request over the limits, before the model sees any of it; None when within."""
        limits = self.limits
        if len(uploads) > limits.max_files:
            return error(413, f"{len(uploads)} files in one request, at most {limits.max_files} (--max-files); "
                              f"send them in several requests")
        for upload in uploads:
            if (upload.size or 0) > limits.max_upload_bytes:
                return error(413, f"{upload.filename or 'a file'} is {upload.size / MB:.1f} MB, over the limit of "
                                  f"{limits.max_upload_mb:g} MB per photo (--max-upload-mb); send a smaller copy "
                                  f"(the model sees it at {self.classifier.image_size} px anyway)")
        return None


class Review:
    """The suspects review: the suspects stage's table, their photos under data.path, and the decisions, which
    go into the exclude file (stages/exclusions.py: rewritten atomically under a lock, so concurrent clicks
    never lose one). The table is read on every request: a `dvc repro` while the server runs shows at once."""

    def __init__(self, suspects_path, exclude_path, data_path):
        self.suspects_path, self.exclude_path, self.data_path = Path(suspects_path), Path(exclude_path), Path(data_path)

    def table(self):
        return read_suspects(self.suspects_path) if self.suspects_path.is_file() else []

    def listing(self):
        decided = decisions(self.exclude_path, self.data_path)
        return {"suspects_file": str(self.suspects_path), "found": self.suspects_path.is_file(),
                "exclude_file": str(self.exclude_path),
                "suspects": [{**row, "decision": decided.get(row["path"])} for row in self.table()]}

    def photo(self, path):
        """The photo file of a listed suspect; None for a path the table does not list (no other file is served)."""
        if not any(row["path"] == path for row in self.table()):
            return None
        file = self.data_path / path
        return file if file.is_file() else None

    def decide(self, path, decision):
        """Record the decision; False for a path the table does not list."""
        if not any(row["path"] == path for row in self.table()):
            return False
        record_decision(self.exclude_path, path, decision)
        return True


def review_from_params(suspects_path=SUSPECTS_CSV):
    """The review of this repository: data.path and data.exclude from params.yaml (exclude.txt where unset)."""
    data = load_params()["data"] if Path(PARAMS_FILE).is_file() else {"path": "data/synthetic", "exclude": None}
    return Review(suspects_path, data["exclude"] or "exclude.txt", data["path"])


class Decision(BaseModel):
    path: str
    decision: str


# --- the API's records, for the docs at /docs ------------------------------------------------------

class Result(BaseModel):
    """One photo, exactly as `python -m stages.predict --format json` writes it."""
    path: str
    label: str | None
    probability: float | None
    top3: list[tuple[str, float]]
    low_confidence: bool | None
    located: bool | None = None   # false: no face found, the model saw the region (null: the model does not locate)
    box: dict[str, float] | None = None  # the part of the photo the model saw: top, bottom, left, right fractions
    error: str | None
    random_weights: bool


class Problem(BaseModel):
    detail: str


class FilesProblem(Problem):
    results: list[Result]


def error(status, detail, headers=None, **extra):
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


# --- the app ----------------------------------------------------------------------------------------

def create_app(service, review=None):
    app = FastAPIOffline(
        title="Neckline classifier",
        description="Classify garment photos by neckline with the trained model. The page at `/` does "
                    "the same in a browser. `curl -F files=@photo.jpg -F files=@other.jpg "
                    "http://127.0.0.1:8000/predict`",
        version="1")
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_body_bytes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(RequestValidationError, not_a_photo_upload)
    app.add_exception_handler(StarletteHTTPException, unreadable_upload)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/review", include_in_schema=False)
    async def review_page():
        return FileResponse(STATIC_DIR / "review.html")

    @app.get("/review/suspects", summary="The suspect labels, worst first, each with the decision on it so far")
    async def suspects():
        if review is None:
            return error(404, "no review: the server was started without one")
        return review.listing()

    @app.get("/review/photo", summary="The photo of one listed suspect (path relative to data.path)")
    async def suspect_photo(path: str):
        file = review.photo(path) if review is not None else None
        if file is None:
            return error(404, f"{path!r} is not a suspect's photo under data.path; GET /review/suspects lists them")
        return FileResponse(file)

    @app.post("/review/decision", summary="Keep or exclude a suspect: rewrites the exclude file (data.exclude)")
    def decide(decision: Decision):  # plain def: the file lock waits on a worker thread, not the event loop
        if review is None:
            return error(404, "no review: the server was started without one")
        if decision.decision not in DECISIONS:
            return error(400, f"decision is {decision.decision!r}; send one of {', '.join(DECISIONS)}")
        if not review.decide(decision.path, decision.decision):
            return error(404, f"{decision.path!r} is not in {review.suspects_path}; only listed suspects are decided "
                              "here (edit the exclude file for others)")
        return {"path": decision.path, "decision": decision.decision, "exclude_file": str(review.exclude_path)}

    @app.get("/health", summary="Whether the server answers, and how many requests the model has")
    async def health():
        return {"status": "ok", "model": service.classifier.kind, "random_weights": service.classifier.random_weights,
                "requests_in_model": service.lane.requests}

    @app.get("/model", summary="The model: kind, classes, preprocessing, threshold, limits, test metrics")
    async def model():
        return service.describe()

    @app.post("/predict", summary="Classify one or more photos", response_model=None, responses={
        200: {"model": list[Result], "description": "one record per photo, in order"},
        400: {"model": Problem, "description": "no photos in the field `files`"},
        413: {"model": Problem, "description": "a photo over --max-upload-mb, or more than --max-files"},
        422: {"model": FilesProblem, "description": "some files are not usable photos; `results` has every "
                                                   "file's record, the usable ones classified"}})
    async def predict(files: Annotated[list[UploadFile], File(description=f"the photos ({FORMATS})")]):
        refused = service.check_uploads(files)
        if refused is not None:
            return refused
        results = await service.lane.run(service.classify_uploads, files)
        headers = {"X-Model": service.classifier.kind}
        failed = [r for r in results if r["error"]]
        if failed:
            reasons = "; ".join(f"{r['path']}: {r['error']}" for r in failed)
            return error(422, f"{len(failed)} of {len(results)} file(s) could not be classified ({reasons}); send "
                              f"{FORMATS} photos of at most {service.image_limits.max_pixels:,} pixels. `results` holds every "
                              f"file's record, the others classified", results=results, headers=headers)
        return JSONResponse(results, headers=headers)

    return app


def how_to_send(request):
    return (f"send each photo as a file in the multipart/form-data field '{FIELD}', e.g. curl -F {FIELD}=@photo.jpg "
            f"{request.url.replace(query='')}")


async def not_a_photo_upload(request, exc):
    """FastAPI's 422 for a request without files in the `files` field, reworded into what to send instead."""
    if request.url.path == "/review/decision":
        return error(400, 'send a JSON body {"path": "<a suspect\'s path>", "decision": "exclude" or "keep"}')
    content_type = request.headers.get("content-type", "").split(";")[0]
    if content_type != "multipart/form-data":
        sent = f"a body of type {content_type}" if content_type else "no multipart/form-data body"
    elif isinstance(exc.body, FormData):
        fields = [f"'{name}' ({'a file' if isinstance(value, StarletteUploadFile) else 'text'})"
                  for name, value in exc.body.multi_items()]
        sent = f"the field(s) {', '.join(fields)}" if fields else "no fields"
    else:
        sent = "no fields"
    return error(400, f"no photos in the field '{FIELD}' (the request had {sent}); {how_to_send(request)}")


async def unreadable_upload(request, exc):
    """A multipart body Starlette cannot parse is a 400 too: say what to send instead."""
    if exc.status_code == 400 and request.url.path == "/predict":
        return error(400, f"{str(exc.detail).rstrip('.')}; {how_to_send(request)}")
    return await http_exception_handler(request, exc)


class BodyLimit:
    """Refuses a request body over max_bytes as it streams in, before it is spooled to disk whole."""

    def __init__(self, app, max_bytes):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = (f"request body over {self.max_bytes / MB:.0f} MB (--max-files x --max-upload-mb); "
                  f"send fewer or smaller photos per request")
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            return await error(413, detail)(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # FastAPI passes an HTTPException from here on as it is
                raise StarletteHTTPException(413, detail)
            return message

        await self.app(scope, counted_receive, send)


# --- the command -------------------------------------------------------------------------------------

def load_served_model(kind, models_dir=MODELS_DIR):
    """The classifier for --model (load_classifier's clear errors for a model not trained or turned off)."""
    return load_classifier(kind, models_dir)


def last_evaluation(kind, metrics_path=TEST_METRICS):
    """The model's section of the last evaluation (metrics/test.json), or None without one."""
    try:
        return json.loads(Path(metrics_path).read_text())[kind]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    return parse


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
    parser.add_argument("--models-dir", default=str(MODELS_DIR), help="where the trained models are (default: models)")
    parser.add_argument("--metrics", default=str(TEST_METRICS),
                        help="the evaluation that picks the default model (default: metrics/test.json)")
    return parser.parse_args(argv)


def listening_socket(host, port):
    """The server's socket, bound before the model loads, so that a port in use is a clear error at once."""
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as err:
        reason = os.strerror(err.errno) if (err.errno or 0) > 0 else err.strerror or str(err)
        raise PipelineError(f"cannot listen on {host}:{port} ({reason}); choose another --port, "
                            f"or stop the program that uses it") from None


def main(argv=None):
    args = parse_args(argv)
    threshold, image_limits = settings_from_params()
    review = review_from_params()
    kind = args.model or best_model(args.metrics) or "head"
    with listening_socket(args.host, args.port) as sock:
        classifier = load_served_model(kind, args.models_dir)
        if classifier.random_weights:
            log.warning("%s", classifier.random_weights_warning())
        # The first call traces the model's graph: pay for it now, not in the first visitor's request.
        classifier.probabilities(np.full((1, classifier.image_size, classifier.image_size, 3), 255, np.uint8))
        service = Service(classifier, threshold, image_limits, Limits(args.max_files, args.max_upload_mb),
                          last_evaluation(kind, args.metrics))
        host, port = sock.getsockname()[:2]
        log.info("serving the %s on http://%s:%d/ (threshold %s); suspect labels to review: http://%s:%d/review "
                 "(decisions go into %s)", classifier.title, host, port, threshold, host, port, review.exclude_path)
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
