"""Fixtures of the UI tests: the tiny model's real data (with two gaps, to show missing data),
served by a real ``deepdecipher serve`` process, and a headless Debian Chromium driven by Selenium.

Nothing is stubbed: every section the pages render comes from the tables the pipeline
materialized for the tiny model (Neuroscope, statistics, logit effects, Neuron2Graph graphs,
token index, similar neurons, explanations). Chromium is required: CI installs it
(scripts/setup.sh), so a missing browser fails the tests instead of skipping them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from dd_api.ui.routes import SEARCH_PAGE
from dd_assets import storage
from dd_assets.tables import EXPLANATIONS, LOGIT_EFFECTS, N2G_GRAPHS, N2G_TOKEN_INDEX
from tests.api.test_live import running_server

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PARTIAL_LAYER = 1
"""The layer whose logit effects the UI data lacks, to show a service missing for one layer."""
NO_GRAPH = (0, 2)
"""The neuron whose Neuron2Graph row the UI data lacks, to show a graph missing for one neuron."""


def drop_graph(root: str, layer: int, neuron: int) -> None:
    """Rewrite one layer of ``n2g_graphs`` without one neuron's row."""
    graphs = storage.read(root, N2G_GRAPHS, "tiny", [layer])
    assert graphs.filter(pl.col("neuron") == neuron).height == 1, "the tiny model lacks that graph"
    storage.write_partition(
        root, N2G_GRAPHS, graphs.filter(pl.col("neuron") != neuron), "tiny", [layer]
    )


def remove_table(root: str, table) -> None:
    """Delete a whole table directory, as if its asset had never been materialized."""
    shutil.rmtree(storage.table_uri(root, table).removeprefix("file://"))


def search_token(tiny) -> str:
    """A letters-only token of the real N2G token index that several neurons share."""
    index = storage.read(tiny.root, N2G_TOKEN_INDEX, "tiny")
    counts = (
        index.filter(pl.col("token").str.contains(r"^[a-z]+$"))
        .group_by("token")
        .agg(pl.struct("layer", "neuron").n_unique().alias("n"))
        .filter(pl.col("n").is_between(2, 50))
        .sort(["n", "token"], descending=[True, False])
    )
    assert counts.height, "the tiny model's token index has no shared letters-only token"
    return counts["token"][0]


def explanation_word(tiny) -> str:
    """A word that several real explanations share, but fewer than a page of results."""
    texts = storage.read(tiny.root, EXPLANATIONS, "tiny")["explanation"].to_list()
    counts: dict[str, int] = {}
    for text in texts:
        for word in {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)}:
            counts[word] = counts.get(word, 0) + 1
    fits = [(n, w) for w, n in counts.items() if 2 <= n <= SEARCH_PAGE // 2]
    assert fits, "no word is shared by a few explanations of the tiny model"
    return max(fits)[1]


@pytest.fixture(scope="session")
def ui_data(tiny, tmp_path_factory) -> str:
    """A copy of the tiny model's tables without logit effects for layer PARTIAL_LAYER and
    without the Neuron2Graph graph of neuron NO_GRAPH."""
    root = tmp_path_factory.mktemp("ui") / "data"
    shutil.copytree(tiny.root, root)
    empty = pl.DataFrame(schema=LOGIT_EFFECTS.schema)
    storage.write_partition(str(root), LOGIT_EFFECTS, empty, "tiny", [PARTIAL_LAYER])
    drop_graph(str(root), *NO_GRAPH)
    return str(root)


@pytest.fixture(scope="session")
def ui_server(tiny, ui_data):
    """``deepdecipher serve`` over the UI data on a free port; yields its base URL."""
    env = {
        "DEEPDECIPHER_DATA_ROOT": ui_data,
        "DEEPDECIPHER_REGISTRY": str(tiny.registry),
        "DEEPDECIPHER_REFRESH_SECONDS": "0",
    }
    with running_server(env) as base:
        yield base


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
