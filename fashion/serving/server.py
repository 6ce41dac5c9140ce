"""The web server behind `python -m stages.serve`: the page and the HTTP API, with the review of suspect labels
(suspects_review.py) and the review queue of a tag run (review_queue.py).

Every photo goes through `fashion.serving.classify.classify`, the prediction command's own code, so
the server and the command give the same records. One model lane runs the model one batch at a time.
"""

import argparse
import asyncio
import logging
import os
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

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

from fashion.errors import PipelineError
from fashion.paths import Paths
from fashion.serving import review_queue, suspects_review
from fashion.serving.classify import LOW_CONFIDENCE, classify, load_classifier
from fashion.serving.decision import MEANING, DecisionRule
from fashion.serving.responses import STATIC_DIR, error

log = logging.getLogger(__name__)

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
        """threshold: the model's DecisionRule, or a number (a rule with that threshold, no unfamiliar check)."""
        self.rule = threshold if isinstance(threshold, DecisionRule) else DecisionRule(threshold)
        self.threshold, self.classifier, self.image_limits = self.rule.threshold, classifier, image_limits
        self.limits, self.test_metrics = limits, test_metrics
        self.lane = ModelLane()

    def describe(self):
        """What GET /model answers, and what the page draws from."""
        return {"kind": self.classifier.kind, "title": self.classifier.title, "classes": self.classifier.classes,
                "random_weights": self.classifier.random_weights, "trained_on": self.classifier.trained_on,
                "preprocessing": self.classifier.preprocessing.to_record(),
                "confidence_threshold": self.threshold, "low_confidence_warning": LOW_CONFIDENCE,
                "decision_rule": {**self.rule.to_record(), "description": self.rule.describe()}, "decisions": MEANING,
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
            return classify(self.classifier, entries, self.rule, BATCH_SIZE, self.image_limits,
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


# --- the API's records, for the docs at /docs ------------------------------------------------------

class Result(BaseModel):
    """One photo, exactly as `python -m stages.predict --format json` writes it."""
    path: str
    label: str | None
    probability: float | None
    top3: list[tuple[str, float]]
    low_confidence: bool | None
    decision: str | None = None   # auto | review | unfamiliar (null for a file that could not be classified)
    novelty: float | None = None  # distance of the photo's backbone features to the training photos' (null: no check)
    located: bool | None = None   # false: nothing found, the model saw the region (null: the model does not locate)
    locator: str | None = None    # what placed the box: face, pose, closeup, none (null: the model does not locate)
    view: str | None = None       # front, back (no neckline to see), or null when unknown
    box: dict[str, float] | None = None  # the part of the photo the model saw: top, bottom, left, right fractions
    error: str | None
    random_weights: bool


class Problem(BaseModel):
    detail: str


class FilesProblem(Problem):
    results: list[Result]


# --- the app ----------------------------------------------------------------------------------------

def create_app(service, review=None, queue=None):
    """The app: the page and the API, the suspects review (review: a suspects_review.Review) and the review
    queue (queue: a review_queue.ReviewQueue); each answers 404 where None."""
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
    app.include_router(suspects_review.review_routes(review))
    app.include_router(review_queue.queue_routes(queue))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

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
            return error(422, f"{len(failed)} of {len(results)} file(s) could not be classified ({reasons}). "
                              "`results` holds every file's record, the others classified", results=results,
                         headers=headers)
        return JSONResponse(results, headers=headers)

    return app


def how_to_send(request):
    return (f"send each photo as a file in the multipart/form-data field '{FIELD}', e.g. curl -F {FIELD}=@photo.jpg "
            f"{request.url.replace(query='')}")


async def not_a_photo_upload(request, exc):
    """FastAPI's 422 for a request without files in the `files` field, reworded into what to send instead."""
    if request.url.path == "/review/decision":
        return error(400, suspects_review.BAD_BODY)
    if request.url.path == "/queue/answer":
        return error(400, review_queue.BAD_BODY)
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


# --- loading -------------------------------------------------------------------------------------

def load_served_model(kind, models_dir=Paths().models):
    """The classifier for --model (load_classifier's clear errors for a model not trained or turned off)."""
    return load_classifier(kind, models_dir)


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    return parse


def listening_socket(host, port):
    """The server's socket, bound before the model loads, so that a port in use is a clear error at once."""
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as err:
        reason = os.strerror(err.errno) if (err.errno or 0) > 0 else err.strerror or str(err)
        raise PipelineError(f"cannot listen on {host}:{port} ({reason}); choose another --port, "
                            f"or stop the program that uses it") from None
