"""Neuron2Graph over HTTP: the graph service, token search and predictions, on the tiny model."""

from __future__ import annotations

import httpx
import orjson
import polars as pl
import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.methods.n2g.trie import PredictionTrie
from dd_assets.tables import N2G_GRAPHS, N2G_TOKEN_INDEX, NEURON_SIMILARITY
from tests.api.test_live import running_server


@pytest.fixture
def client(api_env):
    with TestClient(create_app(ApiSettings())) as c:
        yield c


@pytest.fixture(scope="module")
def graphs(tiny) -> pl.DataFrame:
    return storage.read(tiny.root, N2G_GRAPHS, "tiny")


def _with_lines(graphs: pl.DataFrame) -> dict:
    return graphs.filter(pl.col("lines") > 0).sort("f1", descending=True).row(0, named=True)


def test_graph_neuron_has_deepdecipher_shape_and_our_fields(client, graphs):
    row = _with_lines(graphs)
    r = client.get(f"/api/tiny/neuron2graph/{row['layer']}/{row['neuron']}")
    assert r.status_code == 200
    data = r.json()["data"]
    graph = data["graph"]
    assert graph["subgraph_indices"][0] == 0
    assert graph["subgraph_indices"][-1] == len(graph["graph"]) > 0
    for node in graph["graph"]:
        assert set(node) == {"token", "required", "importance"}
        assert all(0 <= i < len(graph["graph"]) for i in node["required"])
    assert data["graphviz"].startswith("digraph")
    assert data["svg"].startswith("<svg") and "n2g-node" in data["svg"]
    fid = data["fidelity"]
    assert fid["f1"] == pytest.approx(row["f1"])
    assert set(fid["baseline"]) >= {"precision", "recall", "f1"}
    assert data["augmenter"] == "embedding"
    assert set(data["train_docs"]).isdisjoint(data["test_docs"])
    assert isinstance(data["similar"], list)
    # The served trie is the simulator: it reproduces the stored one.
    assert data["trie"] == orjson.loads(row["trie"])


def test_similar_neurons_are_served_sorted(client, tiny):
    sim = storage.read(tiny.root, NEURON_SIMILARITY, "tiny")
    assert sim.height > 0
    first = sim.row(0, named=True)
    data = client.get(f"/api/tiny/neuron2graph/{first['layer']}/{first['neuron']}").json()["data"]
    values = [s["similarity"] for s in data["similar"]]
    assert values == sorted(values, reverse=True) and min(values) >= 0.4
    want = sim.filter((pl.col("layer") == first["layer"]) & (pl.col("neuron") == first["neuron"]))
    assert len(values) == want.height


def test_layer_and_model_summaries(client, graphs):
    layer = client.get("/api/tiny/neuron2graph/0").json()["data"]
    assert layer["num_neurons"] == 96
    assert layer["num_graphs"] == graphs.filter(pl.col("layer") == 0).height
    assert layer["coverage"] == pytest.approx(layer["num_graphs"] / 96)
    assert layer["mean_f1"] == pytest.approx(
        graphs.filter(pl.col("layer") == 0)["f1"].mean(), abs=1e-6
    )
    f1s = [n["f1"] for n in layer["neurons"]]
    assert f1s == sorted(f1s, reverse=True)
    model = client.get("/api/tiny/neuron2graph").json()["data"]
    assert [entry["layer"] for entry in model["layers"]] == [0, 1]
    assert model["overall"]["num_graphs"] == graphs.height


def test_uncovered_neuron_answers_missing_like_deepdecipher(tiny, graphs, data_copy, monkeypatch):
    """With partial coverage (the default run graphs a sample), the other neurons answer 200
    with ``missing_data_types`` (as DeepDecipher does) and a detail with the layer's coverage."""
    layer0 = graphs.filter(pl.col("layer") == 0)
    dropped = int(layer0["neuron"][0])
    storage.write_partition(
        data_copy, N2G_GRAPHS, layer0.filter(pl.col("neuron") != dropped), "tiny", [0]
    )
    monkeypatch.setenv("DEEPDECIPHER_DATA_ROOT", data_copy)
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    with TestClient(create_app(ApiSettings())) as client:
        r = client.get(f"/api/tiny/neuron2graph/0/{dropped}")
        assert r.status_code == 200 and "data" not in r.json()
        assert r.json()["missing_data_types"] == ["n2g_graphs"]
        assert f"{layer0.height - 1} of 96 neurons of layer 0 have a graph" in r.json()["detail"]
        assert r.json()["metadata"]["name"] == "tiny"
        layer = client.get("/api/tiny/neuron2graph/0").json()["data"]
        assert layer["coverage"] == pytest.approx((layer0.height - 1) / 96)


def esc(token: str) -> str:
    """A comma inside a token is written \\, in a query (commas separate terms)."""
    return token.replace(",", "\\,")


def test_search_semantics_match_the_index(client, tiny):
    index = storage.read(tiny.root, N2G_TOKEN_INDEX, "tiny")
    counts = index.group_by("token").len().sort(["len", "token"], descending=[True, False])
    token = counts["token"][0]

    def expected(kind: str) -> set[tuple[int, int]]:
        rows = index.filter(pl.col("token") == token)
        if kind != "any":
            rows = rows.filter(pl.col("kind") == kind)
        return set(rows.select("layer", "neuron").iter_rows())

    for kind in ("any", "activating", "important"):
        body = client.get("/api/tiny/neuron2graph-search", params={"query": f"{kind}:{esc(token)}"})
        got = {(d["layer"], d["neuron"]) for d in body.json()["data"]}
        assert got == expected(kind), kind
        assert body.json()["total"] == len(got)
    # Case and surrounding spaces do not matter; activation ranks the results.
    body = client.get(
        "/api/tiny/neuron2graph-search", params={"query": f"ANY:  {esc(token.upper())} "}
    )
    data = body.json()["data"]
    assert {(d["layer"], d["neuron"]) for d in data} == expected("any")
    ranked = [d["activation"] if d["activation"] is not None else -1 for d in data]
    assert ranked == sorted(ranked, reverse=True)


def test_search_intersects_terms_and_pages(client, tiny):
    index = storage.read(tiny.root, N2G_TOKEN_INDEX, "tiny")
    pairs = (
        index.group_by("layer", "neuron")
        .agg(pl.col("token").unique())
        .filter(pl.col("token").list.len() >= 2)
        .sort("layer", "neuron")
    )
    layer, neuron, tokens = pairs.row(0)
    a, b = sorted(tokens)[:2]
    query = f"any:{esc(a)},any:{esc(b)}"
    data = client.get("/api/tiny/neuron2graph-search", params={"query": query}).json()
    with_a = set(index.filter(pl.col("token") == a).select("layer", "neuron").iter_rows())
    with_b = set(index.filter(pl.col("token") == b).select("layer", "neuron").iter_rows())
    assert {(d["layer"], d["neuron"]) for d in data["data"]} == with_a & with_b
    assert (layer, neuron) in with_a & with_b
    full = client.get("/api/tiny/neuron2graph-search", params={"query": f"any:{esc(a)}"}).json()
    page = client.get(
        "/api/tiny/neuron2graph-search", params={"query": f"any:{esc(a)}", "limit": 1, "offset": 1}
    ).json()
    assert page["total"] == full["total"] and page["data"] == full["data"][1:2]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("the", "malformed term"),
        ("nope:the", "malformed term"),
        ("any:", "empty token"),
        ("any:the,", "malformed term"),
        (",".join(["any:a"] * 17), "at most 16 terms"),
    ],
)
def test_malformed_search_is_a_400(client, query, fragment):
    r = client.get("/api/tiny/neuron2graph-search", params={"query": query})
    assert r.status_code == 400 and fragment in r.json()["detail"]
    assert client.get("/api/tiny/neuron2graph-search").status_code == 400  # no query at all


def test_predict_runs_the_stored_graph_over_text(client, graphs):
    row = _with_lines(graphs)
    trie = PredictionTrie.from_json(orjson.loads(row["trie"]))
    token = trie.to_json()["children"][0]["token"]
    text = f"x {token} y {token}"
    r = client.get(
        f"/api/tiny/neuron2graph-predict/{row['layer']}/{row['neuron']}", params={"text": text}
    )
    assert r.status_code == 200
    data = r.json()["data"]
    assert "".join(data["tokens"]) == text
    assert len(data["activations"]) == len(data["tokens"]) == len(data["scaled_activations"])
    want = trie.predict(["<|bos|>", *data["tokens"]])[1:]
    assert data["activations"] == pytest.approx(want.tolist(), abs=1e-4)
    assert data["scaled_activations"] == pytest.approx(
        [a * row["base_max_act"] for a in data["activations"]], rel=1e-3, abs=1e-3
    )
    bad = client.get(f"/api/tiny/neuron2graph-predict/{row['layer']}/{row['neuron']}")
    assert bad.status_code == 400
    long = client.get(
        f"/api/tiny/neuron2graph-predict/{row['layer']}/{row['neuron']}",
        params={"text": "a" * 2001},
    )
    assert long.status_code == 400 and "2000" in long.json()["detail"]


def test_n2g_routes_on_a_real_server(tiny, graphs):
    row = _with_lines(graphs)
    env = {"DEEPDECIPHER_DATA_ROOT": tiny.root, "DEEPDECIPHER_REGISTRY": str(tiny.registry)}
    with running_server(env) as base:
        graph = httpx.get(f"{base}/api/tiny/neuron2graph/{row['layer']}/{row['neuron']}")
        assert graph.status_code == 200 and graph.json()["data"]["svg"].startswith("<svg")
        token = graph.json()["data"]["graph"]["graph"][0]["token"].strip().lower() or "the"
        search = httpx.get(f"{base}/api/tiny/neuron2graph-search", params={"query": f"any:{token}"})
        assert search.status_code == 200
        hits = {(d["layer"], d["neuron"]) for d in search.json()["data"]}
        if token.strip():
            assert (row["layer"], row["neuron"]) in hits
        predict = httpx.get(
            f"{base}/api/tiny/neuron2graph-predict/{row['layer']}/{row['neuron']}",
            params={"text": "hello world"},
        )
        assert predict.status_code == 200
        assert httpx.get(f"{base}/api/tiny/neuron2graph-search").status_code == 400


def test_query_grammar_unit():
    from dd_api.query.n2g import parse_query

    terms = parse_query(r"ANY: The ,important:\,,activating:a\,b")
    assert [(t.kinds, t.token) for t in terms] == [
        (("activating", "important"), "the"),
        (("important",), ","),
        (("activating",), "a,b"),
    ]


def test_short_json_columns_are_served(tiny, graphs, data_copy, monkeypatch):
    """A layer whose graphs are all small keeps its strings as fixed-width numpy str_ (as the
    one-neuron-per-layer SmolLM2 smoke run does): graph, trie and predictions still work."""
    small = graphs.filter(pl.col("layer") == 0).sort("lines").head(1)
    empty_trie = '{"children":[]}'  # a graph with no lines: the shortest valid trie
    small = small.with_columns(trie=pl.lit(empty_trie))
    assert len(small["graph"][0]) <= 256  # so the served columns are numpy str_
    storage.write_partition(data_copy, N2G_GRAPHS, small, "tiny", [0])
    monkeypatch.setenv("DEEPDECIPHER_DATA_ROOT", data_copy)
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    neuron = small["neuron"][0]
    with TestClient(create_app(ApiSettings())) as client:
        r = client.get(f"/api/tiny/neuron2graph/0/{neuron}")
        assert r.status_code == 200
        assert r.json()["data"]["graph"] == orjson.loads(small["graph"][0])
        assert r.json()["data"]["trie"] == {"children": []}
        p = client.get(f"/api/tiny/neuron2graph-predict/0/{neuron}", params={"text": "a b"})
        assert p.status_code == 200 and set(p.json()["data"]["activations"]) == {0.0}
