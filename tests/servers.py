"""Running the server as a user does, and a real browser for its pages: shared by the server's test modules."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, require_marker

STARTUP_SECONDS = 180


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`python -m stages.serve` running in `cwd`; the code is this checkout's (-P: not the cwd's)."""

    def __init__(self, cwd, *args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(cwd) / f"serve-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-P", "-m", "stages.serve", "--port", str(self.port),
                                             *map(str, args)], cwd=cwd, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the server did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def answers(self):
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        """Ctrl+C, as a user stops it; its exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def browser():
    """Headless Chromium through chromedriver (Debian's chromium and chromium-driver); CI must have them."""
    require_marker("browser", "drives a browser")
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        message = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=412,915"):  # a phone's width
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


def copy_served(copy, folder):
    """The served copy's models, metrics and photos in another folder, for a server with other settings."""
    for name in ("models", "metrics", "photos"):
        shutil.copytree(copy / name, folder / name)
    return folder
