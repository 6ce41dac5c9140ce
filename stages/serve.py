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
    GET  /queue    the review queue of a tag run (--tags, default tags.csv): its `review` and `unfamiliar`
                   photos, most uncertain first, with the box and the top 3; each answer (a class, "no
                   neckline visible" or "not a garment") goes into the labels file (data.confirmed), and
                   the next `dvc repro` trains on the photos answered with a class

The model runs on one worker thread, one request's photos at a time in batches, so the event loop
stays free for /health and for receiving the next uploads. Bad input never takes the server down:
it gets a 4xx answer `{"detail": ...}` that says what was wrong and what to do instead.
"""


from fashion.errors import run_stage
from fashion.serving.launch import run


def main(argv=None):
    run(argv)


if __name__ == "__main__":
    run_stage(main)
