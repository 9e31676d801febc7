"""The UI's pages through Litestar's TestClient: routes, deep links, error pages, escaping, and the
Neuron2Graph, explanation and search sections, checked against what the JSON API serves for the
tiny model's real data (and against a copy of it with those tables removed)."""

from __future__ import annotations

import html
import re

import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_api.ui import views
from dd_api.ui.routes import SEARCH_PAGE
from dd_assets.tables import EXPLANATIONS, N2G_GRAPHS, N2G_TOKEN_INDEX
from tests.ui.conftest import explanation_word, remove_table, search_token


@pytest.fixture
def client(api_env):
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def bare_client(tiny, data_copy):
    """The tiny model without Neuron2Graph graphs, token index and explanations."""
    for table in (N2G_GRAPHS, N2G_TOKEN_INDEX, EXPLANATIONS):
        remove_table(data_copy, table)
    settings = ApiSettings(data_root=data_copy, registry=str(tiny.registry), refresh_seconds=0)
    with TestClient(create_app(settings)) as c:
        yield c


def section(page: str, sid: str) -> str:
    """The HTML of one ``<section id=...>`` of a page."""
    m = re.search(rf'<section class="card" id="{sid}">(.*?)</section>', page, re.S)
    assert m, f"no section {sid}"
    return m.group(1)


def num(value) -> str:
    """A number as the pages print it (the ``num`` filter)."""
    return "–" if value is None else f"{value:.3g}"


def served_links(page: str) -> list[tuple[int, int]]:
    return [
        (int(a), int(b)) for a, b in re.findall(r'class="nl" href="/viz/tiny/(\d+)/(\d+)"', page)
    ]


def test_neighbours_wrap_across_layers_and_the_model():
    assert views.neighbours(2, 96, 0, 5) == ((0, 4), (0, 6))
    assert views.neighbours(2, 96, 0, 95) == ((0, 94), (1, 0))
    assert views.neighbours(2, 96, 1, 0) == ((0, 95), (1, 1))
    assert views.neighbours(2, 96, 0, 0) == ((1, 95), (0, 1))
    assert views.neighbours(2, 96, 1, 95) == ((1, 94), (0, 0))


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


def _graph_neuron(client) -> tuple[int, int]:
    """A neuron with a multi-node graph and similar neurons (the richest section to check)."""
    best = None
    for layer in (0, 1):
        for row in client.get(f"/api/tiny/neuron2graph/{layer}").json()["data"]["neurons"]:
            data = client.get(f"/api/tiny/neuron2graph/{layer}/{row['neuron']}").json()["data"]
            if data["similar"]:
                key = (len(data["graph"]["graph"]), -layer, -row["neuron"])
                best = max(best or key, key)
    assert best, "no neuron of the tiny model has a graph with similar neurons"
    return -best[1], -best[2]


def test_neuron_page_shows_the_served_graph_fidelity_similar_and_explanation(client):
    layer, neuron = _graph_neuron(client)
    g = client.get(f"/api/tiny/neuron2graph/{layer}/{neuron}").json()["data"]
    e = client.get(f"/api/tiny/neuron_explainer/{layer}/{neuron}").json()["data"]
    page = client.get(f"/viz/tiny/{layer}/{neuron}").text
    graph = section(page, "graph")
    svg = re.search(r'<div class="graph">(<svg.*?</svg>)</div>', graph, re.S).group(1)
    assert svg == g["svg"]
    nodes = [
        html.unescape(t) for t in re.findall(r'class="n2g-node [a-z]+" data-token="([^"]*)"', svg)
    ]
    assert sorted(nodes) == sorted(n["token"] for n in g["graph"]["graph"]) and nodes
    f = g["fidelity"]
    shown = re.search(
        r"precision <b>([^<]*)</b> · recall <b>([^<]*)</b> · F1 <b>([^<]*)</b>", graph
    ).groups()
    assert shown == (num(f["precision"]), num(f["recall"]), num(f["f1"]))
    assert f"baseline F1 {num(f['baseline']['f1'])}" in graph and g["augmenter"] in graph
    assert 'name="text"' in graph and "data-not-computed" not in graph
    similar = section(page, "similar")
    assert served_links(similar) == [(x["layer"], x["neuron"]) for x in g["similar"]]
    for x in g["similar"]:
        assert f'title="similarity {num(x["similarity"])}"' in similar
    expl = section(page, "explanation")
    quote = re.search(r'<blockquote class="expl">(.*?)</blockquote>', expl, re.S).group(1)
    assert html.unescape(quote) == e["explanation"] and e["explanation"]
    assert f"score <b>{num(e['score'])}</b>" in expl and e["explainer"] in expl
    # The second, independent score: labelled with its scorer and encoder, never merged.
    a = e["embedding_score"]
    shown = re.search(
        r'<p id="embedding-score">embedding AUROC <b>([^<]*)</b>(.*?)</p>', expl, re.S
    )
    assert shown.group(1) == num(a["score"]) and a["scorer"] in shown.group(2)
    assert a["encoder"] in shown.group(2)
    assert (a["score_status"] in html.unescape(shown.group(2))) == (a["score"] is None)
    assert "data-not-computed" not in page


def test_layer_page_shows_the_served_fidelity(client):
    for layer in (0, 1):
        d = client.get(f"/api/tiny/neuron2graph/{layer}").json()["data"]
        page = client.get(f"/viz/tiny/{layer}?limit=96").text
        n2g = section(page, "layer-n2g")
        assert f"<dd>{d['num_graphs']} / {d['num_neurons']} ({num(d['coverage'])})</dd>" in n2g
        assert f"<b>{num(d['mean_f1'])}</b> (baseline {num(d['mean_baseline_f1'])})" in n2g
        assert f"<dd>{num(d['mean_precision'])}</dd>" in n2g
        f1 = {r["neuron"]: r["f1"] for r in d["neurons"]}
        rows = re.findall(
            r'href="/viz/tiny/\d+/(\d+)">N\d+</a></td>\s*(?:<td>[^<]*</td>){3}\s*<td>([^<]*)</td>',
            section(page, "important"),
        )
        assert len(rows) == 96
        for n, shown in rows:
            assert shown == num(f1[int(n)]), (layer, n)


def test_token_search_lists_the_neurons_the_api_returns(client, tiny):
    token = search_token(tiny)
    served = client.get(
        "/api/tiny/neuron2graph-search", params={"query": f"any:{token}", "limit": SEARCH_PAGE}
    ).json()
    assert served["total"] >= 2
    page = client.get("/viz/tiny", params={"token": token}).text
    found = section(page, "token-search")
    assert served_links(found) == [(r["layer"], r["neuron"]) for r in served["data"]]
    assert f"Found {served['total']} results" in found
    for r in served["data"]:
        if r["activation"] is not None:
            assert f"activation {num(r['activation'])}" in found
    # A malformed query is the API's 400 message, shown inline.
    bad = section(client.get("/viz/tiny", params={"token": "nope:x"}).text, "token-search")
    api = client.get("/api/tiny/neuron2graph-search", params={"query": "nope:x"})
    assert api.status_code == 400 and api.json()["detail"] in html.unescape(bad)
    assert 'class="results"' not in bad


def test_explanation_search_lists_the_api_results(client, tiny):
    word = explanation_word(tiny)
    served = client.get(
        "/api/tiny/explanation-search", params={"q": word, "limit": SEARCH_PAGE}
    ).json()
    assert served["total"] >= 1
    found = section(client.get("/viz/tiny", params={"q": word}).text, "explanation-search")
    assert served_links(found) == [(r["layer"], r["neuron"]) for r in served["data"]]
    plural = "" if served["total"] == 1 else "s"
    assert f"Found {served['total']} result{plural}" in found
    assert f"ranked by {served['ranking']}" in html.unescape(found)
    for r in served["data"]:
        # Offline token lists are labelled as such, their score as a token-lookup baseline.
        label = "token-lookup baseline" if r["kind"] == "top-tokens" else "score"
        assert r["explanation"] in html.unescape(found) and f"{label} {num(r['score'])}" in found


def test_sections_without_their_tables_say_not_computed(bare_client):
    meta = bare_client.get("/api/tiny/metadata").json()["data"]
    assert not {"neuron2graph", "neuron_explainer"} & set(meta["available_services"])
    page = bare_client.get("/viz/tiny/0/5")
    assert page.status_code == 200
    marks = set(re.findall(r'data-not-computed="([^"]*)"', page.text))
    assert marks == {"explanation", "similar neurons", "Neuron2Graph graph", "N2G prediction"}
    assert '<div class="ex"' in page.text  # the other sections still render
    layer = bare_client.get("/viz/tiny/0").text
    assert "not computed" in section(layer, "layer-n2g") and 'href="/viz/tiny/0/' in layer
    model = bare_client.get("/viz/tiny", params={"token": "the", "q": "return"}).text
    for sid in ("token-search", "explanation-search"):
        found = section(model, sid)
        assert "data-not-computed" in found and 'class="results"' not in found, sid
    assert re.search(r"<td>neuron2graph</td>\s*<td>not computed</td>", model)
    assert re.search(r"<td>neuron_explainer</td>\s*<td>not computed</td>", model)


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
