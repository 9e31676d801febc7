"""Fixtures of the UI tests: the tiny model's data with one service partly removed, served by a
real uvicorn server on a socket, and a headless Debian Chromium driven by Selenium.

The server runs in a thread of the test process (not a subprocess) so that a test can install
stand-ins for services that other branches build (Neuron2Graph, token search) with monkeypatch and
see the pages render them. Chromium is required: CI installs it (scripts/setup.sh), so a missing
browser fails the tests instead of skipping them.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import polars as pl
import pytest
import uvicorn

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.tables import LOGIT_EFFECTS

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PARTIAL_LAYER = 1
"""The layer whose logit effects the UI data lacks, to show a missing service."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ui_data(tiny, tmp_path_factory) -> str:
    """A copy of the tiny model's tables without logit effects for layer PARTIAL_LAYER."""
    root = tmp_path_factory.mktemp("ui") / "data"
    shutil.copytree(tiny.root, root)
    empty = pl.DataFrame(schema=LOGIT_EFFECTS.schema)
    storage.write_partition(str(root), LOGIT_EFFECTS, empty, "tiny", [PARTIAL_LAYER])
    return str(root)


@pytest.fixture(scope="session")
def ui_server(tiny, ui_data):
    """The application on a real socket; yields its base URL."""
    settings = ApiSettings(data_root=ui_data, registry=str(tiny.registry), refresh_seconds=0)
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "UI server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through chromedriver, both found by path (no downloads)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(
            f"browser tests need Debian chromium and chromium-driver, missing {missing}: "
            "run scripts/setup.sh as root or apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-dev-shm-usage", "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
