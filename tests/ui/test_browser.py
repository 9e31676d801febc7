"""End-to-end tests of the web UI in headless Chromium (Selenium + Debian chromium-driver).

They walk the pages as a person would: index, a model, the chooser, a neuron; check that the
coloured tokens carry the activations the API serves, the navigation (Previous/Next, keys, Random),
the token search's links, the Neuron2Graph section with its SVG and prediction box, and the
"not computed" states, all against what the real server serves for the tiny model's data.
Screenshots of the index, model and neuron pages (laptop and phone width) go to test-artifacts/ui/.
"""

from __future__ import annotations

import re

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from dd_api.ui.routes import SEARCH_PAGE
from dd_assets.methods.n2g.tokens import search_key
from tests.ui.conftest import ARTIFACTS, NO_GRAPH, PARTIAL_LAYER, explanation_word, search_token

NEURON_URL = re.compile(r"/viz/tiny/(\d+)/(\d+)$")


def wait_url(driver, pattern: str) -> str:
    WebDriverWait(driver, 15).until(lambda d: re.search(pattern, d.current_url))
    return driver.current_url


def shot(driver, name: str, width: int = 1280) -> None:
    """A full-page screenshot at a given CSS width (phone widths emulate a mobile viewport)."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 700}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics["height"] = min(max(height, 600), 8000)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_index_model_chooser_neuron_with_served_activations(browser, ui_server):
    browser.get(ui_server + "/")
    wait_url(browser, r"/viz$")
    card = browser.find_element(By.CSS_SELECTOR, '.model-card[data-model="tiny"]')
    assert "96" in card.text  # neurons per layer
    coverage = card.find_element(By.CSS_SELECTOR, "table.coverage").text
    assert re.search(r"neuron2graph\s+2/2 layers", coverage), coverage
    assert re.search(r"neuron_explainer\s+2/2 layers", coverage), coverage
    assert re.search(r"logit_effects\s+1/2 layers", coverage), coverage
    shot(browser, "index")
    card.find_element(By.LINK_TEXT, "tiny").click()
    wait_url(browser, r"/viz/tiny$")
    shot(browser, "model")
    form = browser.find_element(By.CSS_SELECTOR, "form.chooser")
    for name, value in (("layer", "0"), ("neuron", "3")):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    browser.find_element(By.ID, "go").click()
    wait_url(browser, r"/viz/tiny/0/3$")
    shot(browser, "neuron")
    shot(browser, "neuron-phone", width=390)
    dark = [{"name": "prefers-color-scheme", "value": "dark"}]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": dark})
    assert (
        browser.find_element(By.TAG_NAME, "body").value_of_css_property("background-color")
        == "rgba(21, 23, 26, 1)"
    )
    shot(browser, "neuron-dark")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    served = httpx.get(f"{ui_server}/api/tiny/neuroscope/0/3").json()["data"]["texts"]
    examples = browser.find_elements(By.CSS_SELECTOR, "#examples .ex")
    assert len(examples) == len(served) > 0
    for ex, text in zip(examples, served, strict=True):
        spans = ex.find_elements(By.CSS_SELECTOR, ".toks span[data-act]")
        acts = [float(s.get_attribute("data-act")) for s in spans]
        assert acts == pytest.approx(text["activations"], rel=1e-3, abs=1e-6)
        peak = spans[text["max_activating_token_index"]]
        assert "pk" in peak.get_attribute("class")
        assert float(peak.get_attribute("title")) == pytest.approx(text["max_activation"], 1e-3)
        assert "--a: 1.00" in peak.get_attribute("style") or "--a:1.00" in peak.get_attribute(
            "style"
        )
        colour = peak.value_of_css_property("background-color")
        assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour
    # The window hides far tokens until "show whole text" opens.
    ex = examples[0]
    hidden = ex.find_elements(By.CSS_SELECTOR, ".toks span.o")
    if hidden:
        assert not hidden[0].is_displayed()
        ex.find_element(By.CSS_SELECTOR, "details.whole summary").click()
        assert hidden[0].is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "#stats svg.hist rect")
    assert browser.find_elements(By.CSS_SELECTOR, "#logits ol.bars li")


def test_previous_next_wrap_keys_and_random(browser, ui_server):
    browser.get(ui_server + "/viz/tiny/0/95")
    browser.find_element(By.ID, "next").click()
    wait_url(browser, r"/viz/tiny/1/0$")
    browser.find_element(By.ID, "prev").click()
    wait_url(browser, r"/viz/tiny/0/95$")
    browser.get(ui_server + "/viz/tiny/0/0")
    browser.find_element(By.ID, "prev").click()
    wait_url(browser, r"/viz/tiny/1/95$")  # wraps around the model
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("j")
    wait_url(browser, r"/viz/tiny/0/0$")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    wait_url(browser, r"/viz/tiny/0/1$")
    browser.find_element(By.TAG_NAME, "body").send_keys("k")
    wait_url(browser, r"/viz/tiny/0/0$")
    seen = set()
    for _ in range(4):
        browser.find_element(By.ID, "random").click()
        WebDriverWait(browser, 15).until(
            lambda d: NEURON_URL.search(d.current_url) and "N" in d.title
        )
        layer, neuron = map(int, NEURON_URL.search(browser.current_url).groups())
        assert 0 <= layer < 2 and 0 <= neuron < 96
        assert browser.find_element(By.ID, "title").text.endswith(f"L{layer} N{neuron}")
        seen.add((layer, neuron))
    browser.find_element(By.TAG_NAME, "body").send_keys("r")
    WebDriverWait(browser, 15).until(lambda d: NEURON_URL.search(d.current_url))
    assert len(seen) > 1


def test_missing_data_shows_not_computed(browser, ui_server):
    """The UI data lacks neuron NO_GRAPH's graph and layer PARTIAL_LAYER's logit effects: those
    sections alone say so, the rest of each page renders from the served data."""
    layer, neuron = NO_GRAPH
    api = httpx.get(f"{ui_server}/api/tiny/neuron2graph/{layer}/{neuron}")
    assert api.status_code == 200 and api.json()["missing_data_types"] == ["n2g_graphs"]
    browser.get(f"{ui_server}/viz/tiny/{layer}/{neuron}")
    marks = {e.get_attribute("data-not-computed") for e in browser.find_elements(
        By.CSS_SELECTOR, "[data-not-computed]")}  # fmt: skip
    assert marks == {"Neuron2Graph graph", "similar neurons", "N2G prediction"}
    assert "no Neuron2Graph graph" in browser.find_element(By.ID, "graph").text
    # The text box still runs the model (every neuron); only its N2G row is missing.
    assert browser.find_elements(By.CSS_SELECTOR, "#predict form")
    assert not browser.find_elements(By.CSS_SELECTOR, "#predict .out")
    served = httpx.get(f"{ui_server}/api/tiny/neuron_explainer/{layer}/{neuron}").json()["data"]
    assert (
        browser.find_element(By.CSS_SELECTOR, "#explanation .expl").text
        == served["explanation"].strip()
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#examples .ex")
    # Layer PARTIAL_LAYER has no logit effects: that section alone says so; the rest renders.
    browser.get(f"{ui_server}/viz/tiny/{PARTIAL_LAYER}/5")
    assert "not computed" in browser.find_element(By.ID, "logits").text
    assert browser.find_elements(By.CSS_SELECTOR, "#examples .ex")
    assert browser.find_elements(By.CSS_SELECTOR, "#graph svg.n2g-graph")
    browser.get(ui_server + "/viz/tiny")
    cov = browser.find_element(By.ID, "services").text
    assert re.search(r"logit_effects\s+1/2 layers", cov), cov
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-not-computed]")


def test_token_search_links_open_the_right_neurons(browser, ui_server, tiny):
    """A token of the real N2G index typed into the model page lists exactly the neurons the API
    returns for ``any:<token>``, in its order; a link opens a neuron whose graph has the token."""
    token = search_token(tiny)
    served = httpx.get(
        f"{ui_server}/api/tiny/neuron2graph-search",
        params={"query": f"any:{token}", "limit": SEARCH_PAGE},
    ).json()
    want = [(r["layer"], r["neuron"]) for r in served["data"]]
    assert len(want) == served["total"] >= 2
    browser.get(ui_server + "/viz/tiny")
    box = browser.find_element(By.CSS_SELECTOR, '#token-search input[name="token"]')
    box.send_keys(token, Keys.ENTER)
    wait_url(browser, r"\?token=")
    found = browser.find_element(By.CSS_SELECTOR, "#token-search .found").text
    links = browser.find_elements(By.CSS_SELECTOR, "#token-search .results a")
    targets = [tuple(map(int, NEURON_URL.search(a.get_attribute("href")).groups())) for a in links]
    assert targets == want and f"Found {served['total']} results" in found
    pick = next(i for i, t in enumerate(targets) if t != NO_GRAPH)
    links[pick].click()
    layer, neuron = targets[pick]
    wait_url(browser, rf"/viz/tiny/{layer}/{neuron}$")
    nodes = browser.find_elements(By.CSS_SELECTOR, "#graph svg.n2g-graph g.n2g-node")
    assert token in {search_key(n.get_attribute("data-token")) for n in nodes}
    # The search state is a deep link.
    browser.get(f"{ui_server}/viz/tiny?token={token}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#token-search .results a")) == len(want)


def test_explanation_search_in_the_browser(browser, ui_server, tiny):
    word = explanation_word(tiny)
    served = httpx.get(
        f"{ui_server}/api/tiny/explanation-search", params={"q": word, "limit": SEARCH_PAGE}
    ).json()
    browser.get(ui_server + "/viz/tiny")
    box = browser.find_element(By.CSS_SELECTOR, '#explanation-search input[name="q"]')
    box.send_keys(word, Keys.ENTER)
    wait_url(browser, r"\?q=")
    items = browser.find_elements(By.CSS_SELECTOR, "#explanation-search .results li")
    got = [
        tuple(
            map(
                int,
                NEURON_URL.search(li.find_element(By.TAG_NAME, "a").get_attribute("href")).groups(),
            )
        )
        for li in items
    ]
    assert got == [(r["layer"], r["neuron"]) for r in served["data"]] and got
    assert served["data"][0]["explanation"].strip()[:20] in items[0].text


def _graph_with_similar(base: str) -> tuple[int, int, dict]:
    """Layer 0's best-F1 neuron whose graph has similar neurons, and its served payload."""
    for row in httpx.get(f"{base}/api/tiny/neuron2graph/0").json()["data"]["neurons"]:
        g = httpx.get(f"{base}/api/tiny/neuron2graph/0/{row['neuron']}").json()["data"]
        if g["similar"]:
            return 0, row["neuron"], g
    raise AssertionError("no graph of layer 0 has similar neurons")


def test_neuron2graph_section_and_prediction_box(browser, ui_server):
    """The served graph as SVG, its fidelity, similar neurons as links, and the prediction box
    showing the predict route's activations for typed text."""
    layer, neuron, g = _graph_with_similar(ui_server)
    browser.get(f"{ui_server}/viz/tiny/{layer}/{neuron}")
    svg = browser.find_element(By.CSS_SELECTOR, "#graph .graph svg.n2g-graph")
    assert svg.is_displayed() and svg.size["width"] > 0
    nodes = svg.find_elements(By.CSS_SELECTOR, "g.n2g-node")
    assert sorted(n.get_attribute("data-token") for n in nodes) == sorted(
        x["token"] for x in g["graph"]["graph"]
    )
    f = g["fidelity"]
    fidelity = browser.find_element(By.CSS_SELECTOR, "#graph .fidelity").text
    assert f"F1 {f['f1']:.3g}" in fidelity and f"precision {f['precision']:.3g}" in fidelity
    # The neuron's own top example: the graph was built from it, so some token must fire.
    example = httpx.get(f"{ui_server}/api/tiny/neuroscope/{layer}/{neuron}").json()["data"]
    text = "".join(example["texts"][0]["tokens"][1:])  # without the BOS token
    text = re.sub(r"\s", " ", text)  # a text input holds one line; a typed tab moves focus
    box = browser.find_element(By.CSS_SELECTOR, '#predict input[name="text"]')
    box.send_keys(text, Keys.ENTER)
    out = browser.find_element(By.CSS_SELECTOR, "#predict .out")
    WebDriverWait(browser, 15).until(lambda d: out.find_elements(By.CSS_SELECTOR, "span[data-act]"))
    served = httpx.get(
        f"{ui_server}/api/tiny/neuron2graph-predict/{layer}/{neuron}", params={"text": text}
    ).json()["data"]
    spans = out.find_elements(By.CSS_SELECTOR, "span[data-act]")
    assert len(spans) == len(served["tokens"]) > 0
    acts = [float(s.get_attribute("data-act")) for s in spans]
    norms = [float(s.get_attribute("data-norm")) for s in spans]
    assert acts == pytest.approx(served["scaled_activations"], abs=1e-6)
    assert norms == pytest.approx(served["activations"], abs=1e-6)
    assert "".join(s.get_attribute("textContent") for s in spans) == "".join(
        t.replace("\n", "\u21b5\n") for t in served["tokens"]
    )
    assert max(acts) > 0 and "err" not in (out.get_attribute("class") or "")
    similar = browser.find_elements(By.CSS_SELECTOR, "#similar .similar a")
    assert [
        tuple(map(int, NEURON_URL.search(a.get_attribute("href")).groups())) for a in similar
    ] == [(x["layer"], x["neuron"]) for x in g["similar"]]
    other = g["similar"][0]
    similar[0].click()
    wait_url(browser, rf"/viz/tiny/{other['layer']}/{other['neuron']}$")


LIVE_WAIT = 120  # the first live request loads the model in the inference process


def wait_answer(browser, container, status, selector: str) -> None:
    """Wait until the live route's answer is rendered (or an error shown), then require no error."""
    WebDriverWait(browser, LIVE_WAIT).until(
        lambda d: (
            container.find_elements(By.CSS_SELECTOR, selector)
            or "err" in (status.get_attribute("class") or "")
        )
    )
    assert "err" not in (status.get_attribute("class") or ""), status.text


def test_text_box_shows_the_models_real_activations(browser, ui_server):
    """Every neuron's text box runs the model: its spans are the live route's tokens and
    activations, the peak outlined; the N2G row appears where the neuron has a graph."""
    layer, neuron = NO_GRAPH
    text = "def main(self):\n    return None"
    browser.get(f"{ui_server}/viz/tiny/{layer}/{neuron}")
    box = browser.find_element(By.CSS_SELECTOR, '#predict input[name="text"]')
    box.send_keys(re.sub(r"\s", " ", text), Keys.ENTER)
    live = browser.find_element(By.CSS_SELECTOR, "#predict .live")
    wait_answer(browser, live, live, "span[data-act]")
    served = httpx.get(
        f"{ui_server}/api/tiny/activations/{layer}/{neuron}",
        params={"text": re.sub(r"\s", " ", text)},
    ).json()["data"]
    spans = live.find_elements(By.CSS_SELECTOR, "span[data-act]")
    assert [s.get_attribute("textContent") for s in spans] == [
        t.replace("\n", "\u21b5\n") for t in served["tokens"]
    ]
    assert [float(s.get_attribute("data-act")) for s in spans] == pytest.approx(
        served["activations"], abs=1e-6
    )
    peak = live.find_element(By.CSS_SELECTOR, "span.pk")
    assert spans.index(peak) == served["max_activating_token_index"]
    assert served["n2g_prediction"] is None and "no Neuron2Graph graph" in served["n2g_note"]
    assert not browser.find_elements(By.CSS_SELECTOR, "#predict .out")


def test_model_page_finds_the_neurons_that_fire_on_a_text(browser, ui_server):
    text = "import os"
    browser.get(f"{ui_server}/viz/tiny")
    box = browser.find_element(By.CSS_SELECTOR, '#fire input[name="text"]')
    box.send_keys(text, Keys.ENTER)
    results = browser.find_element(By.CSS_SELECTOR, "#fire .fired")
    found = browser.find_element(By.CSS_SELECTOR, "#fire .found")
    wait_answer(browser, results, found, "li")
    assert "fire=import+os" in browser.current_url or "fire=import%20os" in browser.current_url
    served = httpx.get(
        f"{ui_server}/api/tiny/text-search", params={"text": text, "limit": 20}
    ).json()["data"]
    items = results.find_elements(By.TAG_NAME, "li")
    assert [(int(li.get_attribute("data-layer")), int(li.get_attribute("data-neuron")))
            for li in items] == [(n["layer"], n["neuron"]) for n in served["neurons"]]  # fmt: skip
    for li, n in zip(items, served["neurons"], strict=True):
        assert li.find_element(By.CSS_SELECTOR, ".pk").get_attribute("textContent") == n[
            "peak_token"
        ].replace("\n", "\u21b5")
    first = served["neurons"][0]
    items[0].find_element(By.TAG_NAME, "a").click()
    wait_url(browser, rf"/viz/tiny/{first['layer']}/{first['neuron']}$")
    # The search is a URL: opening it again shows the same results.
    browser.back()
    WebDriverWait(browser, LIVE_WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#fire .fired li")
    )
