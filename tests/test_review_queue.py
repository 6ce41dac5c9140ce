"""The review queue, for real: tag a folder of real photos with the trained model, review them on the server's
/queue page in Chromium and over HTTP, run `prepare` again, and find the answered photos in the training split."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from fashion.data import dataset
from fashion.data.confirmed import read_confirmed
from tests.helpers import NECKLINES, REPO
from tests.servers import Server, browser, copy_served

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

CLASSES = ("henley", "round_neck", "v_neck")  # the `trained` fixture's classes (sorted), from its first 12 photos of each


def command(folder, *args):
    """A stage command as a user runs it in `folder`; the code is this checkout's (-P: not the folder's)."""
    result = subprocess.run([sys.executable, "-P", "-m", *args], cwd=folder, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def tagged(decided, tmp_path_factory):
    """A folder laid out like the repository after `dvc repro` (the decided run's models and decision rules,
    params.yaml of that run with data.path photos/ and data.confirmed confirmed.csv) and a catalog/ of real
    photos the models never saw, tagged by `python -m stages.tag catalog` into tags.csv."""
    params, root = decided
    folder = copy_served(root, tmp_path_factory.mktemp("queue"))
    settings = params.model_dump(mode="json")
    settings["data"].update({"path": "photos", "exclude": None, "confirmed": "confirmed.csv"})
    (folder / "params.yaml").write_text(yaml.safe_dump(settings))
    (folder / "confirmed.csv").write_text("path,label,sha256\n")
    (folder / "catalog").mkdir()
    for name in CLASSES:
        for photo in sorted((NECKLINES() / name).glob("*.jpg"))[12:15]:
            shutil.copy(photo, folder / "catalog" / f"{name}-{photo.name}")
    # A threshold no answer reaches: every familiar photo goes to review, so the queue is never empty.
    result = command(folder, "stages.tag", "catalog", "--output", "tags.csv", "--threshold", "0.9999")
    assert "to review" in result.stdout
    return folder


@pytest.fixture(scope="module")
def queue_server(tagged):
    running = Server(tagged)
    yield running
    running.stop()


def labels(folder):
    return {row["path"]: row["label"] for row in read_confirmed(folder / "confirmed.csv")}


def test_the_queue_lists_the_uncertain_photos_first_with_their_box_and_top_3(queue_server, tagged):
    listing = httpx.get(f"{queue_server.url}/queue/items", timeout=30).json()
    with open(tagged / "tags.csv", newline="") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    queued = [path for path, row in rows.items() if row["decision"] in ("review", "unfamiliar")]
    assert sorted(item["path"] for item in listing["items"]) == sorted(queued) and len(queued) >= 3
    reviews = [item["probability"] for item in listing["items"] if item["decision"] == "review"]
    assert reviews == sorted(reviews) and reviews  # most uncertain first
    decisions = [item["decision"] for item in listing["items"]]
    assert decisions == sorted(decisions, key=lambda d: d != "review")  # review before unfamiliar
    first = listing["items"][0]
    assert first["top3"][0] == [first["label"], pytest.approx(first["probability"], abs=1e-4)]
    assert set(first["box"]) == {"top", "bottom", "left", "right"}
    assert listing["classes"] == list(CLASSES) and set(listing["not_a_class"]) == {"no_neckline", "not_garment"}


def test_concurrent_answers_all_land_and_bad_ones_are_refused(queue_server, tagged):
    items = httpx.get(f"{queue_server.url}/queue/items", timeout=30).json()["items"]
    answers = {item["path"]: CLASSES[n % 3] if n % 4 else "not_garment" for n, item in enumerate(items)}

    def send(path):
        return httpx.post(f"{queue_server.url}/queue/answer", json={"path": path, "label": answers[path]}, timeout=60)

    with ThreadPoolExecutor(max_workers=len(answers)) as clients:  # every reviewer's click at once
        replies = list(clients.map(send, list(answers) * 2))
    assert [reply.status_code for reply in replies] == [200] * len(replies)
    assert labels(tagged) == answers  # each photo once: none lost, none doubled
    shown = httpx.get(f"{queue_server.url}/queue/items", timeout=30).json()
    assert {item["path"]: item["answer"] for item in shown["items"]} == answers and shown["answered"] == len(answers)

    before = (tagged / "confirmed.csv").read_bytes()
    listed = items[0]["path"]
    cases = [({"path": "params.yaml", "label": "v_neck"}, 404, "is not a photo of the queue"),
             ({"path": listed, "label": "polo_collar"}, 400, "send one of henley, round_neck, v_neck, no_neckline"),
             ({"photo": listed}, 400, 'send a JSON body {"path"')]
    for body, status, words in cases:
        reply = httpx.post(f"{queue_server.url}/queue/answer", json=body, timeout=30)
        assert reply.status_code == status and words in reply.json()["detail"], reply.text
    assert (tagged / "confirmed.csv").read_bytes() == before
    for path in ("params.yaml", "/etc/passwd", "catalog/../params.yaml"):
        reply = httpx.get(f"{queue_server.url}/queue/photo", params={"path": path}, timeout=30)
        assert reply.status_code == 404 and "is not a photo of the review queue" in reply.json()["detail"]
    (tagged / "confirmed.csv").write_text("path,label,sha256\n")


@pytest.mark.browser
def test_review_two_photos_in_a_browser_and_prepare_trains_on_them(queue_server, tagged, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    (tagged / "confirmed.csv").write_text("path,label,sha256\n")
    items = httpx.get(f"{queue_server.url}/queue/items", timeout=30).json()["items"]
    page = httpx.get(f"{queue_server.url}/queue", timeout=30).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(url.startswith("/") for url in assets), assets  # works offline: nothing from a CDN

    driver = browser()
    try:
        driver.get(f"{queue_server.url}/queue")
        WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".queued")) == len(items))
        cards = driver.find_elements(By.CSS_SELECTOR, ".queued")
        assert [card.get_attribute("data-path") for card in cards] == [item["path"] for item in items]
        image = cards[0].find_element(By.CSS_SELECTOR, "img")
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image) > 0)  # the photo itself shows
        outline, shown = cards[0].find_element(By.CSS_SELECTOR, ".outline").rect, image.rect
        box = items[0]["box"]
        assert outline["y"] - shown["y"] == pytest.approx(box["top"] * shown["height"], abs=2)
        assert outline["height"] == pytest.approx((box["bottom"] - box["top"]) * shown["height"], abs=2)
        picks = cards[0].find_elements(By.CSS_SELECTOR, "button.pick")
        assert [p.get_attribute("value") for p in picks] == [label for label, _ in items[0]["top3"]]

        # The first photo: the second of its top 3. The second: a class from the list. The third: no neckline.
        first, second = items[0]["top3"][1][0], next(c for c in CLASSES if c != items[1]["label"])
        picks[1].click()
        Select(cards[1].find_element(By.CSS_SELECTOR, "select")).select_by_value(second)
        cards[2].find_element(By.CSS_SELECTOR, "button.no_neckline").click()
        WebDriverWait(driver, 30).until(lambda d: [c.get_attribute("data-answer") for c in cards[:3]]
                                        == [first, second, "no_neckline"])
        assert "trained on after the next dvc repro" in cards[0].find_element(By.CSS_SELECTOR, ".answer").text
        assert "3 answered" in driver.find_element(By.ID, "summary").text
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page is wider than a phone's screen"
        driver.save_screenshot(str(tmp_path / "queue.png"))
    finally:
        driver.quit()
    assert (tmp_path / "queue.png").stat().st_size > 10_000
    assert labels(tagged) == {items[0]["path"]: first, items[1]["path"]: second, items[2]["path"]: "no_neckline"}

    # The next run: prepare (what `dvc repro` runs first when data.confirmed changed) trains on the two.
    command(tagged, "stages.prepare")
    manifest = {r["path"]: r for r in dataset.read_manifest(tagged / "data/prepared")}
    for item, label in ((items[0], first), (items[1], second)):
        record = manifest[str(tagged / item["path"])]
        assert (record["split"], record["label"]) == ("train", label)
    assert str(tagged / items[2]["path"]) not in manifest
    summary = json.loads((tagged / "data/prepared" / dataset.SUMMARY_FILE).read_text())
    assert summary["confirmed"]["trained"] == 2 and summary["confirmed"]["by_answer"]["no_neckline"] == 1
