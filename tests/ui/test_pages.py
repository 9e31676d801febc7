"""The UI's pages through Litestar's TestClient: routes, deep links, error pages, escaping, and the
sections of services built on other branches, rendered from stand-ins of their agreed payloads."""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.errors import BadRequest
from dd_api.services import SERVICES, Service
from dd_api.ui import views
from dd_assets.tables import NEURON_STATS

META = {"num_layers": 2, "layer_size": 96}


@pytest.fixture
def client(api_env):
    with TestClient(create_app()) as c:
        yield c


def test_neighbours_wrap_across_layers_and_the_model():
    assert views.neighbours(META, 0, 5) == ((0, 4), (0, 6))
    assert views.neighbours(META, 0, 95) == ((0, 94), (1, 0))
    assert views.neighbours(META, 1, 0) == ((0, 95), (1, 1))
    assert views.neighbours(META, 0, 0) == ((1, 95), (0, 1))
    assert views.neighbours(META, 1, 95) == ((1, 94), (0, 0))


def test_tokens_are_escaped_coloured_and_windowed():
    tokens = ["<b>", *(f" t{i}" for i in range(98)), "\n"]
    acts = [-2.0] + [0.0] * 59 + [4.0] + [1.0] * 39
    html = str(views.tokens_html(tokens, acts, peak=60))
    spans = re.findall(r"<span([^>]*)>([^<]*)</span>", html)
    data = [s for s in spans if "data-act" in s[0]]
    assert len(data) == 100 and data[0][1] == "&lt;b&gt;" and data[-1][1] == "\u21b5\n"
    assert 'class="n o"' in data[0][0] and "--a:1.00" in data[0][0]  # negative, outside window
    assert 'class="pk"' in data[60][0] and "--a:1.00" in data[60][0]
    assert "--a:0.25" in data[61][0] and "class" not in data[61][0]
    assert 'class="o"' in data[65][0] and 'class="o"' not in data[64][0]
    assert "class" not in data[10][0] and "style" not in data[10][0]  # in window, zero
    assert html.count('class="gap"') == 2


def test_histogram_svg_has_one_bar_per_bin_with_tooltips():
    svg = str(views.histogram_svg([-1, 0, 1, 2], [5, 0, 2], title="t", log=True))
    assert svg.count("<rect") == 3 and "<title>-1 to 0: 5</title>" in svg
    assert 'class="zero"' in svg


def test_token_query_assumes_any():
    assert views.token_query(" the, important:cat ,") == "any:the,important:cat"


def test_root_redirects_and_pages_render(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/viz"
    for path in ["/viz", "/viz/tiny", "/viz/tiny/1", "/viz/tiny/1/95", "/viz/tiny/0?offset=90"]:
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert "server-timing" in r.headers
    assert client.get("/viz/tiny/1/95").text.count('href="/viz/tiny/0/0"') >= 1  # next wraps


def test_errors_are_html_pages_with_api_status(client):
    for path, status in [
        ("/viz/nope", 404), ("/viz/tiny/2", 404), ("/viz/tiny/0/96", 404), ("/viz/tiny/0/x", 400),
        ("/viz/tiny/-1/3", 400), ("/viz/tiny/go?layer=&neuron=", 400),
        ("/viz/tiny/go?layer=1&neuron=500", 404), ("/viz/tiny/neuroscopex/0/1", 404),
    ]:  # fmt: skip
        r = client.get(path, follow_redirects=False)
        assert r.status_code == status, path
        assert r.headers["content-type"].startswith("text/html") and "<h1>" in r.text, path


def test_chooser_random_and_deepdecipher_links_redirect(client):
    r = client.get("/viz/tiny/go?layer=1&neuron=7", follow_redirects=False)
    assert r.headers["location"] == "/viz/tiny/1/7"
    r = client.get("/viz/tiny/go?layer=1&neuron=", follow_redirects=False)
    assert r.headers["location"] == "/viz/tiny/1"
    for _ in range(20):
        r = client.get("/viz/tiny/random", follow_redirects=False)
        assert r.status_code == 302 and r.headers["cache-control"] == "no-store"
        layer, neuron = map(
            int, re.fullmatch(r"/viz/tiny/(\d+)/(\d+)", r.headers["location"]).groups()
        )
        assert 0 <= layer < 2 and 0 <= neuron < 96
    r = client.get("/viz/tiny/all/1/3", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/viz/tiny/1/3"


def test_layer_page_ranks_by_activation_range_and_pages(client):
    ranked = client.get("/api/tiny/neuroscope/0").json()["data"]["important_neurons"]
    html = client.get("/viz/tiny/0?limit=10&offset=5").text
    shown = [int(n) for n in re.findall(r'href="/viz/tiny/0/(\d+)">N', html)]
    assert shown == [idx["neuron"] for idx, _ in ranked[5:15]]
    assert "6–15 of 96" in html and "density" in html and '<svg class="hist"' in html


def test_user_input_is_escaped(client):
    r = client.get("/viz/tiny", params={"token": "<script>x</script>", "q": '"><img>'})
    assert r.status_code == 200
    assert "<script>x" not in r.text and "&lt;script&gt;" in r.text and '"><img>' not in r.text
    assert "not computed" in r.text


def test_ui_routes_stay_out_of_the_api_schema(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/viz") or p == "/"]


def test_static_assets_are_versioned_and_cacheable(client):
    html = client.get("/viz").text
    css = re.search(r'href="(/static/ui/ui\.css\?v=\w+)"', html).group(1)
    r = client.get(css)
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    assert "prefers-color-scheme: dark" in r.text and "max-width: 700px" in r.text
    assert "http" not in re.sub(r"xmlns=\"http[^\"]*\"", "", html.split("</head>")[0])  # no CDN


def _explained(store, model, layer, neuron):
    return {"explanation": "closing <brackets>", "score": 0.61, "explainer": "gpt-x",
            "scorer": "sim", "simulator_mode": "all_at_once", "prompt_version": "1",
            "status": "ok"}  # fmt: skip


def _layer_graphs(store, model, layer):
    return {"num_neurons": 96, "num_graphs": 90, "coverage": 0.9375, "mean_precision": 0.5,
            "mean_recall": 0.4, "mean_f1": 0.444, "mean_baseline_f1": 0.1,
            "neurons": [{"neuron": n, "precision": 0.5, "recall": 0.4, "f1": 0.25}
                        for n in range(96)]}  # fmt: skip


def test_explanation_and_layer_fidelity_render_when_computed(client, monkeypatch):
    expl = Service("neuron_explainer", (NEURON_STATS,), "stand-in", neuron=_explained)
    graphs = Service("neuron2graph", (NEURON_STATS,), "stand-in", layer=_layer_graphs)
    monkeypatch.setitem(SERVICES, "neuron_explainer", expl)
    monkeypatch.setitem(SERVICES, "neuron2graph", graphs)
    html = client.get("/viz/tiny/0/4").text
    assert "closing &lt;brackets&gt;" in html and "0.61" in html and "gpt-x" in html
    assert 'data-not-computed="explanation"' not in html
    layer = client.get("/viz/tiny/0").text
    assert "0.444" in layer and "90 / 96" in layer and "0.25" in layer


def test_searches_render_results_and_errors(client, monkeypatch):
    def explanations(store, model, q, limit, offset):
        return {"data": [{"layer": 1, "neuron": 2, "explanation": f"about {q}", "score": 0.5}],
                "total": 1}  # fmt: skip

    def tokens(store, model, query, limit, offset):
        raise BadRequest(f"bad query {query!r}")

    monkeypatch.setattr(views, "explanation_search_available", lambda store, model: True)
    monkeypatch.setattr(views, "explanation_search", explanations)
    monkeypatch.setattr(views, "token_search_available", lambda store, model: True)
    monkeypatch.setattr(views, "token_search", tokens)
    html = client.get("/viz/tiny", params={"q": "dogs", "token": "x"}).text
    assert 'href="/viz/tiny/1/2"' in html and "about dogs" in html and "Found 1 result" in html
    assert "bad query &#39;any:x&#39;" in html


def test_odd_paths_and_queries_never_give_5xx(client):
    """A small deterministic fuzz of the UI's path segments and query values."""
    import random

    odd = ["", "0", "1", "95", "96", "-1", "1e3", "0x1", " 1", "\u0663", "%00", "a" * 300, "..",
           "tiny", "random", "go", "all", "neuroscope", "%F0%9F%98%80", "<b>", "9" * 30]  # fmt: skip
    rng = random.Random(0)
    paths = {
        f"/viz/{'/'.join(rng.choice(odd) for _ in range(rng.randint(1, 4)))}" for _ in range(250)
    }
    paths |= {f"/viz/tiny/{a}/{b}" for a in odd[:8] for b in odd[:8]}
    queries = [{"token": "a" * 500}, {"q": "\x00"}, {"offset": "-1"}, {"offset": "x"},
               {"limit": "0"}, {"layer": "1", "neuron": "\u0663"}]  # fmt: skip
    statuses = set()
    for path in sorted(paths):
        r = client.get(path, follow_redirects=False)
        statuses.add(r.status_code)
        assert r.status_code < 500, (path, r.text[:200])
    for path in ("/viz/tiny", "/viz/tiny/0", "/viz/tiny/go"):
        for params in queries:
            r = client.get(path, params=params, follow_redirects=False)
            assert r.status_code < 500, (path, params, r.text[:200])
    assert {200, 302, 400, 404} <= statuses
