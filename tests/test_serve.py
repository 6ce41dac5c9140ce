"""The web server, for real: `python -m stages.serve` in a trained copy, real photos over HTTP, bad input, a browser.

The server runs as a user starts it (a subprocess on a free port of 127.0.0.1) in a folder laid out
like the repository after `dvc repro`: the tiny trained models of the `trained` fixture, their
evaluation and a params.yaml whose threshold and pixel limit differ from the defaults, so that the
server visibly reads them.
"""

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image

from fashion.serving.classify import best_model, model_path
from tests.corpus import bomb_png, write_bad_files
from tests.helpers import REPO, TRAINED_REGION
from tests.servers import Server, browser, copy_served, free_port

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

THRESHOLD = 0.5  # params.yaml of the served copy: not predict's default 0.8
MAX_PIXELS = 1_000_000  # ... and not the default 50 million
MAX_FILES = 8
MAX_UPLOAD_MB = 1


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    """(trained root, a copy laid out like the repository after `dvc repro`, with real photos in photos/)."""
    _, root = trained
    copy = copy_served(root, tmp_path_factory.mktemp("served"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluate"]["confidence_threshold"] = THRESHOLD
    params["data"]["max_pixels"] = MAX_PIXELS
    (copy / "params.yaml").write_text(yaml.safe_dump(params))
    return root, copy


@pytest.fixture(scope="module")
def server(served):
    _, copy = served
    running = Server(copy, "--max-files", MAX_FILES, "--max-upload-mb", MAX_UPLOAD_MB)
    yield running
    running.stop()


def photos(copy, count):
    """Paths relative to the copy, of real neckline photos (copied from ../shared), classes interleaved."""
    by_class = [sorted(folder.glob("*.jpg")) for folder in sorted((copy / "photos").iterdir())]
    mixed = [photo for row in zip(*by_class) for photo in row]
    return [str(photo.relative_to(copy)) for photo in mixed[:count]]


def post(server, files, **kwargs):
    """POST /predict with [(field, name, bytes)]."""
    return httpx.post(f"{server.url}/predict", files=[(field, (name, data)) for field, name, data in files],
                      timeout=60, **kwargs)


def upload(copy, paths):
    return [("files", path, (copy / path).read_bytes()) for path in paths]


def predict_command(copy, *args):
    """`python -m stages.predict --format json` as a user runs it in the same folder."""
    result = subprocess.run([sys.executable, "-P", "-m", "stages.predict", "--format", "json", *args], cwd=copy,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- what it answers ------------------------------------------------------------------------------

def test_a_photo_gets_the_same_records_as_from_the_prediction_command(server, served):
    _, copy = served
    paths = photos(copy, MAX_FILES)
    expected = predict_command(copy, *paths)

    response = post(server, upload(copy, paths))

    assert response.status_code == 200
    assert response.json() == expected  # same batch, same code: every field and probability equal
    assert response.headers["x-model"] == (best_model(copy / "metrics/test.json") or "head")
    for record in expected:
        assert record["low_confidence"] == (record["probability"] < THRESHOLD)
    one_at_a_time = [post(server, upload(copy, [path])).json()[0] for path in paths[:3]]
    for served_alone, predicted in zip(one_at_a_time, expected):
        assert served_alone["label"] == predicted["label"] and served_alone["path"] == predicted["path"]
        assert served_alone["probability"] == pytest.approx(predicted["probability"], abs=1e-5)


def test_model_health_and_the_default_model_is_the_best_by_cross_validation(server, served):
    _, copy = served
    metrics = json.loads((copy / "metrics/test.json").read_text())
    kind = (best_model(copy / "metrics/test.json") or "head")
    info = json.loads(model_path(kind, copy / "models").with_suffix(".json").read_text())

    model = httpx.get(f"{server.url}/model").json()

    assert model["kind"] == kind
    assert model["classes"] == info["classes"]
    assert model["preprocessing"]["region"] == {k.split(".")[-1]: v for k, v in TRAINED_REGION.items()}
    assert model["confidence_threshold"] == THRESHOLD
    assert model["limits"] == {"max_files": MAX_FILES, "max_upload_mb": MAX_UPLOAD_MB, "max_pixels": MAX_PIXELS,
                               "min_side": 16, "max_aspect": 10}
    assert model["test_metrics"] == metrics[kind]
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "model": kind, "random_weights": False,
                                                         "requests_in_model": 0}


def test_the_page_and_the_docs_come_from_the_server_itself(server):
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200
    assert re.search(r'<input type="file" id="files" name="files" multiple accept="image/\*">', page.text)
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200
    for html in (page.text, docs.text):
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and all(url.startswith("/") for url in assets), assets  # nothing from a CDN
        for url in assets:
            if url.endswith((".js", ".css")):
                assert httpx.get(f"{server.url}{url}").status_code == 200, url
    assert "/predict" in httpx.get(f"{server.url}/openapi.json").json()["paths"]


def test_health_answers_while_the_model_is_busy(server, served):
    _, copy = served
    files = upload(copy, photos(copy, MAX_FILES))
    answers = []
    senders = [threading.Thread(target=lambda: answers.append(post(server, files))) for _ in range(12)]
    for sender in senders:
        sender.start()
    busy, waits = [], []
    while any(sender.is_alive() for sender in senders):
        start = time.perf_counter()
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        waits.append(time.perf_counter() - start)
        busy.append(health["requests_in_model"])
    for sender in senders:
        sender.join()
    assert max(busy) >= 1, "no /health answer came while a request was in the model"
    assert max(waits) < 2.0, f"/health waited {max(waits):.2f} s behind the model"
    assert [a.status_code for a in answers] == [200] * 12


# --- bad input --------------------------------------------------------------------------------------

def streamed_body(megabytes):
    """A valid multipart body of one photo-sized part, sent in chunks without a Content-Length."""
    yield b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="huge.jpg"\r\n\r\n'
    for _ in range(megabytes):
        yield b"\xff" * (1024 * 1024)
    yield b"\r\n--xyz--\r\n"


def strip(width, height):
    """A real PNG of a degenerate shape (the photos of a broken export or a scanner's calibration strip)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def bad_requests(copy, tmp):
    """name -> (the request's keyword arguments for httpx.post, status, words the answer must hold)."""
    bad = write_bad_files(tmp / "bad")
    good = (copy / photos(copy, 1)[0]).read_bytes()
    big = bomb_png(2000, 1000)  # 2,000,000 pixels: under the default limit, over params.yaml's

    def files(*parts):
        return {"files": [(field, (name, data)) for field, name, data in parts]}

    return {
        "not an image": (files(("files", "notes.txt", b"shopping list: milk, eggs")), 422, "not an image"),
        "empty file": (files(("files", "empty.jpg", b"")), 422, "empty file (0 bytes)"),
        "truncated JPEG": (files(("files", "cut.jpg", bad["truncated_jpeg"][0].read_bytes())), 422, "truncated"),
        "corrupt JPEG": (files(("files", "corrupt.jpg", bad["corrupt_jpeg"][0].read_bytes())), 422, "corrupt"),
        "decompression bomb": (files(("files", "bomb.png", bad["bomb_png"][0].read_bytes())), 422,
                               "900,000,000 pixels, above the limit of 1,000,000 (data.max_pixels)"),
        "over data.max_pixels": (files(("files", "big.png", big)), 422,
                                 "2,000,000 pixels, above the limit of 1,000,000"),
        "a 1x100000 strip": (files(("files", "strip.png", strip(1, 100_000))), 422,
                             "1x100000 pixels; each side must be at least 16 (data.min_side)"),
        "a 100000x1 strip": (files(("files", "strip.png", strip(100_000, 1))), 422,
                             "100000x1 pixels; each side must be at least 16 (data.min_side)"),
        "a 20x4000 strip": (files(("files", "strip.png", strip(20, 4000))), 422,
                            "aspect ratio 200.0:1 above 10:1 (data.max_aspect)"),
        "a bad file beside a good one": (files(("files", "good.jpg", good), ("files", "notes.txt", b"no")), 422,
                                         "1 of 2 file(s) could not be classified"),
        "over --max-upload-mb": (files(("files", "large.jpg", good + bytes(MAX_UPLOAD_MB * 1024 * 1024))), 413,
                                 f"over the limit of {MAX_UPLOAD_MB} MB per photo (--max-upload-mb)"),
        "over --max-files": (files(*[("files", f"{i}.jpg", good) for i in range(MAX_FILES + 1)]), 413,
                             f"{MAX_FILES + 1} files in one request, at most {MAX_FILES} (--max-files)"),
        "a body over all limits": (files(("files", "huge.jpg", bytes(12 * 1024 * 1024))), 413,
                                   "send fewer or smaller photos per request"),
        "a streamed body over all limits": ({"content": streamed_body(12),
                                             "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
                                            413, "send fewer or smaller photos per request"),
        "wrong field name": (files(("file", "photo.jpg", good)), 400,
                             "no photos in the field 'files' (the request had the field(s) 'file' (a file))"),
        "text instead of a file": ({"data": {"files": "photo.jpg"}, "files": {"note": ("note.jpg", good)}}, 400,
                                   "the request had the field(s) 'files' (text), 'note' (a file)"),
        "a web form without files": ({"data": {"files": "photo.jpg"}}, 400, "application/x-www-form-urlencoded"),
        "no body": ({}, 400, "curl -F files=@photo.jpg"),
        "not multipart": ({"json": {"files": ["photo.jpg"]}}, 400, "application/json"),
        "broken multipart": ({"content": b"--xyz\r\nnonsense",
                              "headers": {"content-type": "multipart/form-data; boundary=xyz"}}, 400,
                             "send each photo as a file in the multipart/form-data field 'files'"),
    }


BAD = ["not an image", "empty file", "truncated JPEG", "corrupt JPEG", "decompression bomb", "over data.max_pixels",
       "a 1x100000 strip", "a 100000x1 strip", "a 20x4000 strip",
       "a bad file beside a good one", "over --max-upload-mb", "over --max-files", "a body over all limits",
       "a streamed body over all limits", "wrong field name", "text instead of a file", "a web form without files",
       "no body", "not multipart", "broken multipart"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_gets_a_4xx_that_says_what_to_do_and_the_next_request_is_served(server, served, tmp_path, case):
    _, copy = served
    request, status, words = bad_requests(copy, tmp_path)[case]

    response = httpx.post(f"{server.url}/predict", timeout=60, **request)

    assert response.status_code == status, response.text
    answer = response.json()
    assert words in answer["detail"]
    if status == 422:
        results = answer["results"]
        assert all(r["error"] for r in results if r["path"] != "good.jpg")
        assert all(r["label"] and not r["error"] for r in results if r["path"] == "good.jpg")
    assert server.alive()
    assert httpx.get(f"{server.url}/health").status_code == 200
    after = post(server, upload(copy, photos(copy, 2)))
    assert after.status_code == 200 and all(r["label"] for r in after.json())


# --- the command ------------------------------------------------------------------------------------

def serve_command(cwd, *args):
    return subprocess.run([sys.executable, "-P", "-m", "stages.serve", "--port", str(free_port()), *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
                          check=False)


def test_without_a_trained_model_it_says_to_run_dvc_repro_and_exits_2(tmp_path):
    nothing = serve_command(tmp_path)
    assert nothing.returncode == 2
    assert "error: models/head.keras not found (no trained head model); run `dvc repro` first" in nothing.stderr
    off = tmp_path / "off"
    (off / "models/finetuned").mkdir(parents=True)
    (off / "models/finetuned/finetuned.json").write_text('{"kind": "finetuned", "enabled": false}')
    finetuned = serve_command(off, "--model", "finetuned")
    assert finetuned.returncode == 2
    assert "error: there is no fine-tuned model: fine-tuning is off (finetune.enabled: false)" in finetuned.stderr
    for result in (nothing, finetuned):
        assert "Traceback" not in result.stderr


def test_a_port_in_use_is_a_clear_error_before_the_model_loads(served):
    _, copy = served
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-P", "-m", "stages.serve", "--port", str(port)], cwd=copy,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                                timeout=120, check=False)
    assert result.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another --port" in result.stderr
    assert "Traceback" not in result.stderr


def test_model_option_serves_that_model_and_ctrl_c_stops_it_cleanly(served):
    _, copy = served
    # Another model than the default, the fine-tuned one where it is not the default itself.
    other = next(kind for kind in ("finetuned", "cnn") if kind != (best_model(copy / "metrics/test.json") or "head"))
    paths = photos(copy, 3)
    expected = predict_command(copy, "--model", other, *paths)
    running = Server(copy, "--model", other)
    try:
        assert httpx.get(f"{running.url}/model").json()["kind"] == other
        assert post(running, upload(copy, paths)).json() == expected
    finally:
        status = running.stop()
    assert status == 0
    assert "Traceback" not in running.log.read_text()


def test_a_head_on_random_weights_is_warned_about_at_start_and_flagged_in_every_answer(trained_random, tmp_path):
    _, root = trained_random
    for name in ("models", "metrics"):
        shutil.copytree(root / name, tmp_path / name)
    photo = next((root / "photos").rglob("*.jpg"))
    running = Server(tmp_path, "--model", "head")
    try:
        assert httpx.get(f"{running.url}/model").json()["random_weights"] is True
        assert httpx.get(f"{running.url}/health").json()["random_weights"] is True
        answer = post(running, [("files", photo.name, photo.read_bytes())])
        assert answer.status_code == 200 and answer.json()[0]["random_weights"] is True
    finally:
        running.stop()
    log = running.log.read_text()
    warning = next(line for line in log.splitlines() if "RANDOM weights" in line and line.startswith("WARNING"))
    assert warning.startswith("WARNING serve: the mobilenet head was trained on features of a backbone with RANDOM")
    assert log.index("RANDOM weights") < log.index("serving the mobilenet head")


def test_answers_carry_the_decision_of_the_models_own_rule(decided, tmp_path):
    """With the decide stage's rule beside the models: the same decisions as the prediction command, and /model
    says which threshold and novelty cutoff give them."""
    _, root = decided
    copy = copy_served(root, tmp_path)
    running = Server(copy)
    try:
        paths = photos(copy, MAX_FILES)
        expected = predict_command(copy, *paths)
        response = post(running, upload(copy, paths))
        assert response.status_code == 200 and response.json() == expected
        assert {r["decision"] for r in expected} <= {"auto", "review", "unfamiliar"}
        assert all(r["novelty"] is not None for r in expected)
        model = httpx.get(f"{running.url}/model").json()
        rule = json.loads((copy / "models/decisions" / f"{model['kind']}.json").read_text())
        assert model["confidence_threshold"] == rule["threshold"]
        assert model["decision_rule"]["unfamiliar_cutoff"] == \
            json.loads((copy / "models/decisions/familiar.json").read_text())["cutoff"]
        assert set(model["decisions"]) == {"auto", "review", "unfamiliar"}
    finally:
        running.stop()


# --- a real browser ------------------------------------------------------------------------------------

def assert_outlined(card, image, region):
    """The card's outline covers `region` (fractions of the photo) of its image's rectangle, to 2 px."""
    from selenium.webdriver.common.by import By

    outline = card.find_element(By.CSS_SELECTOR, ".outline").rect
    assert outline["x"] - image["x"] == pytest.approx(region["left"] * image["width"], abs=2)
    assert outline["y"] - image["y"] == pytest.approx(region["top"] * image["height"], abs=2)
    assert outline["height"] == pytest.approx((region["bottom"] - region["top"]) * image["height"], abs=2)


@pytest.mark.browser
def test_the_page_in_a_browser_shows_each_photo_its_class_and_the_region(server, served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, copy = served
    paths = photos(copy, 2)
    expected = {Path(r["path"]).name: r for r in post(server, upload(copy, paths)).json()}
    (tmp_path / "notes.txt").write_text("not a photo")
    chosen = [copy / path for path in paths] + [tmp_path / "notes.txt"]

    driver = browser()
    try:
        driver.get(f"{server.url}/")
        WebDriverWait(driver, 30).until(lambda d: "Model:" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "files").send_keys("\n".join(map(str, chosen)))
        WebDriverWait(driver, 60).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card .label, .card .error")) == len(chosen))
        cards = {card.find_element(By.CSS_SELECTOR, ".name").text: card
                 for card in driver.find_elements(By.CSS_SELECTOR, ".card")}
        assert set(cards) == {*expected, "notes.txt"}
        for name, result in expected.items():
            card = cards[name]
            assert card.find_element(By.CSS_SELECTOR, ".label").text == result["label"]
            bars = [row.text for row in card.find_elements(By.CSS_SELECTOR, ".top3 .top-label")]
            assert bars == [label for label, _ in result["top3"]]
            assert bool(card.find_elements(By.CSS_SELECTOR, ".warning")) == result["low_confidence"]
            assert "Answered by the" in card.find_element(By.CSS_SELECTOR, ".answered").text
            image = card.find_element(By.CSS_SELECTOR, ".frame img").rect
            region = {k.split(".")[-1]: v for k, v in TRAINED_REGION.items()}  # resize "pad": all of it
            assert_outlined(card, image, region)
        assert "not an image" in cards["notes.txt"].find_element(By.CSS_SELECTOR, ".error").text
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page is wider than a phone's screen"
        driver.save_screenshot(str(tmp_path / "serve.png"))
    finally:
        driver.quit()
    assert (tmp_path / "serve.png").stat().st_size > 10_000


# --- a model that locates the neckline -------------------------------------------------------------

def serve_located(served, folder, locate):
    """The server with a CNN whose recipe has data.locate `locate`, as if it had been trained on located crops:
    the recipe in models/cnn.json is what predict and serve apply. Yields (server, its folder)."""
    _, copy = served
    located = copy_served(copy, folder)
    shutil.copy(copy / "params.yaml", located / "params.yaml")
    info_path = located / "models" / "cnn.json"
    info = json.loads(info_path.read_text())
    info["preprocessing"].update(locate=locate, locate_box=yaml.safe_load((REPO / "params.yaml").read_text())
                                 ["data"]["locate_box"])
    info_path.write_text(json.dumps(info))
    running = Server(located, "--model", "cnn")
    yield running, located
    running.stop()


@pytest.fixture(scope="module")
def located_server(served, tmp_path_factory):
    """The neckline located under the face (data.locate: face)."""
    yield from serve_located(served, tmp_path_factory.mktemp("located_served"), "face")


@pytest.mark.browser
def test_a_located_model_answers_with_its_box_and_the_page_outlines_it(located_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, copy = located_server
    paths = [str(p.relative_to(copy)) for p in sorted((copy / "photos" / "round_neck").glob("*.jpg"))[:4]]
    results = post(server, upload(copy, paths)).json()
    assert results == predict_command(copy, "--model", "cnn", *paths)  # the same records as the command
    region = {k.split(".")[-1]: v for k, v in TRAINED_REGION.items()}
    assert {r["located"] for r in results} == {True, False}  # these photos hold both kinds
    assert all(r["locator"] == ("face" if r["located"] else "none") and r["view"] is None for r in results)
    for result in results:
        if result["located"]:
            assert result["box"] != region and result["box"]["top"] > 0.02
        else:
            assert result["box"] == region  # no face: the model saw the region

    driver = browser()
    try:
        driver.get(f"{server.url}/")
        WebDriverWait(driver, 30).until(lambda d: "Model:" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "files").send_keys("\n".join(str(copy / path) for path in paths))
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card .label")) == len(paths))
        cards = {card.find_element(By.CSS_SELECTOR, ".name").text: card
                 for card in driver.find_elements(By.CSS_SELECTOR, ".card")}
        for result in results:
            card = cards[Path(result["path"]).name]
            image = card.find_element(By.CSS_SELECTOR, ".frame img").rect
            assert_outlined(card, image, result["box"])  # resize "pad": the model saw all of the box
            warned = [w.text for w in card.find_elements(By.CSS_SELECTOR, ".warning.not-located")]
            assert bool(warned) == (result["located"] is False)
            assert all("No neckline located" in text for text in warned)
        driver.save_screenshot(str(tmp_path / "located.png"))
    finally:
        driver.quit()
    assert (tmp_path / "located.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def auto_server(served, tmp_path_factory):
    """data.locate: auto: every photo gets a box and a view."""
    yield from serve_located(served, tmp_path_factory.mktemp("auto_served"), "auto")


@pytest.mark.browser
def test_an_auto_located_model_says_the_locator_and_the_back_views(auto_server, tmp_path):
    """henley's first photos hold back views (looked at), round_neck's first is a close-up cut at the chin."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, copy = auto_server
    paths = [str(p.relative_to(copy)) for p in sorted((copy / "photos" / "henley").glob("*.jpg"))[:4]]
    paths.append(str(sorted((copy / "photos" / "round_neck").glob("*.jpg"))[0].relative_to(copy)))
    results = post(server, upload(copy, paths)).json()
    assert results == predict_command(copy, "--model", "cnn", *paths)  # the same records as the command
    assert all(r["located"] is True for r in results)
    assert {r["view"] for r in results} == {"front", "back", None} and results[-1]["locator"] == "closeup"
    table = subprocess.run([sys.executable, "-P", "-m", "stages.predict", "--model", "cnn", *paths], cwd=copy,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=True)
    assert table.stdout.count("back view") == sum(r["view"] == "back" for r in results) + 1  # and the legend

    driver = browser()
    try:
        driver.get(f"{server.url}/")
        WebDriverWait(driver, 30).until(lambda d: "Model:" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "files").send_keys("\n".join(str(copy / path) for path in paths))
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card .label")) == len(paths))
        cards = {card.find_element(By.CSS_SELECTOR, ".name").text: card
                 for card in driver.find_elements(By.CSS_SELECTOR, ".card")}
        for result in results:
            card = cards[Path(result["path"]).name]
            warned = [w.text for w in card.find_elements(By.CSS_SELECTOR, ".warning.back-view")]
            assert bool(warned) == (result["view"] == "back")
            assert all(text.startswith("Back view") for text in warned)
            assert not card.find_elements(By.CSS_SELECTOR, ".warning.not-located")
        driver.save_screenshot(str(tmp_path / "auto.png"))
    finally:
        driver.quit()
    assert (tmp_path / "auto.png").stat().st_size > 10_000


# --- the review page -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reviewing(served, tmp_path_factory):
    """(a running server, its folder): the served copy with metrics/suspects.csv naming every photo in photos/
    (the suspects stage's columns; which photos it names is the stage's business, tested in test_suspects.py),
    data.path pointing at photos/ and an exclude file that already holds a comment and a digest."""
    _, copy = served
    folder = copy_served(copy, tmp_path_factory.mktemp("review"))
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["data"].update({"source": "folder", "path": "photos", "exclude": "exclude.txt"})
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    paths = sorted(str(p.relative_to(folder / "photos")) for p in (folder / "photos").glob("*/*.jpg"))
    classes = sorted({path.split("/")[0] for path in paths})
    with open(folder / "metrics/suspects.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split", "given", "suggested", "quality", "reason"])
        for number, path in enumerate(paths):
            given = path.split("/")[0]
            suggested = classes[(classes.index(given) + 1) % len(classes)]
            writer.writerow([path, "train", given, suggested, f"{number / 100:.6f}", "likely mislabelled"])
    (folder / "exclude.txt").write_text("# my list\n" + "ab" * 32 + "\n")
    running = Server(folder)
    yield running, folder
    running.stop()


def exclude_lines(folder):
    return (folder / "exclude.txt").read_text().splitlines()


def test_concurrent_decisions_all_land_in_the_exclude_file(reviewing):
    running, folder = reviewing
    listing = httpx.get(f"{running.url}/review/suspects").json()
    paths = [row["path"] for row in listing["suspects"]]
    assert len(paths) >= 30 and listing["exclude_file"] == "exclude.txt"
    decisions = {path: ("keep" if i % 3 == 0 else "exclude") for i, path in enumerate(paths)}

    def send(path):
        return httpx.post(f"{running.url}/review/decision", json={"path": path, "decision": decisions[path]},
                          timeout=60)

    with ThreadPoolExecutor(max_workers=len(paths)) as clients:  # every click at once
        answers = list(clients.map(send, paths))

    assert [a.status_code for a in answers] == [200] * len(paths)
    lines = exclude_lines(folder)
    assert lines[:2] == ["# my list", "ab" * 32]  # what was there stays
    expected = {path if d == "exclude" else f"# keep {path}" for path, d in decisions.items()}
    assert sorted(lines[2:]) == sorted(expected)  # every decision once: none lost, none doubled
    shown = {row["path"]: row["decision"] for row in httpx.get(f"{running.url}/review/suspects").json()["suspects"]}
    assert shown == decisions

    # Changing one's mind replaces the line, also under concurrent clicks on the same photo.
    flip = paths[:10]
    with ThreadPoolExecutor(max_workers=20) as clients:
        list(clients.map(lambda p: httpx.post(f"{running.url}/review/decision",
                                              json={"path": p, "decision": "exclude"}, timeout=60), flip * 2))
    lines = exclude_lines(folder)
    assert all(lines.count(p) == 1 and f"# keep {p}" not in lines for p in flip)
    assert len(lines) == 2 + len(paths)
    assert not list(folder.glob(".exclude.txt.*"))  # no temporary copy left behind


def test_the_review_page_refuses_what_it_does_not_list(reviewing):
    running, folder = reviewing
    before = (folder / "exclude.txt").read_bytes()
    listed = httpx.get(f"{running.url}/review/suspects").json()["suspects"][0]["path"]
    cases = [({"path": "../params.yaml", "decision": "exclude"}, 404, "is not in metrics/suspects.csv"),
             ({"path": "henley/nothing.jpg", "decision": "exclude"}, 404, "only listed suspects are decided here"),
             ({"path": listed, "decision": "delete"}, 400,
              "send one of exclude, keep"),
             ({"photo": "x"}, 400, 'send a JSON body {"path"')]
    for body, status, words in cases:
        answer = httpx.post(f"{running.url}/review/decision", json=body, timeout=30)
        assert answer.status_code == status and words in answer.json()["detail"], answer.text
    assert (folder / "exclude.txt").read_bytes() == before
    for path in ("../params.yaml", "/etc/passwd", "henley/../../models/head.json"):
        answer = httpx.get(f"{running.url}/review/photo", params={"path": path})
        assert answer.status_code == 404 and "is not a suspect's photo" in answer.json()["detail"]


@pytest.mark.browser
def test_the_review_page_in_a_browser_shows_each_suspect_and_writes_decisions(reviewing, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    running, folder = reviewing
    (folder / "exclude.txt").write_text("# my list\n")
    rows = httpx.get(f"{running.url}/review/suspects").json()["suspects"]
    page = httpx.get(f"{running.url}/review").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(url.startswith("/") for url in assets), assets  # works offline: nothing from a CDN

    driver = browser()
    try:
        driver.get(f"{running.url}/review")
        WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".suspect")) == len(rows))
        cards = driver.find_elements(By.CSS_SELECTOR, ".suspect")
        for card, row in zip(cards[:3], rows):
            assert card.get_attribute("data-path") == row["path"]
            assert card.find_element(By.CSS_SELECTOR, ".given").text == row["given"]
            assert card.find_element(By.CSS_SELECTOR, ".suggested").text == row["suggested"]
        image = cards[0].find_element(By.CSS_SELECTOR, "img")
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image) > 0)  # the photo itself shows
        cards[0].find_element(By.CSS_SELECTOR, "button.exclude").click()
        cards[1].find_element(By.CSS_SELECTOR, "button.keep").click()
        WebDriverWait(driver, 30).until(lambda d: cards[0].get_attribute("data-decision") == "exclude"
                                        and cards[1].get_attribute("data-decision") == "keep")
        assert "excluded" in cards[0].find_element(By.CSS_SELECTOR, ".decision").text
        assert exclude_lines(folder) == ["# my list", rows[0]["path"], f"# keep {rows[1]['path']}"]
        cards[0].find_element(By.CSS_SELECTOR, "button.keep").click()  # changed my mind
        WebDriverWait(driver, 30).until(lambda d: cards[0].get_attribute("data-decision") == "keep")
        assert exclude_lines(folder) == ["# my list", f"# keep {rows[1]['path']}", f"# keep {rows[0]['path']}"]
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page is wider than a phone's screen"
        driver.save_screenshot(str(tmp_path / "review.png"))
    finally:
        driver.quit()
    assert (tmp_path / "review.png").stat().st_size > 10_000
