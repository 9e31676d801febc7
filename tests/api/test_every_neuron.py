"""Issue 11 over HTTP on the tiny model: bottom_examples, similar_neurons and token search over
every neuron, against the tables they are served from; one test on a real socket."""

from __future__ import annotations

import shutil

import httpx
import polars as pl
import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.tables import (
    ACTIVATION_SAMPLE_WINDOWS,
    NEURON_COACTIVATION,
    NEURON_EXAMPLES,
    NEURON_STATS,
    TOKEN_INDEX,
)
from tests.api.test_live import running_server


@pytest.fixture
def client(api_env):
    with TestClient(create_app(ApiSettings())) as c:
        yield c


def test_bottom_examples_neuron(client, tiny):
    ex = (
        storage.read(tiny.root, NEURON_EXAMPLES, "tiny", [1])
        .filter((pl.col("neuron") == 7) & (pl.col("kind") == "bottom"))
        .sort("rank")
    )
    r = client.get("/api/tiny/bottom_examples/1/7")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["nonnegative"] is False
    assert [t["data_index"] for t in data["texts"]] == ex["doc_index"].to_list()
    minima = [t["min_activation"] for t in data["texts"]]
    assert minima == sorted(minima) and minima[0] < 0
    assert data["min_range"] == min(minima)  # one colour scale over the texts
    assert all(t["min_range"] == data["min_range"] for t in data["texts"])
    assert all(len(t["tokens"]) == len(t["activations"]) for t in data["texts"])


def test_bottom_examples_layer_ranks_by_most_negative(client, tiny):
    stats = storage.read(tiny.root, NEURON_STATS, "tiny", [0])
    ranked = client.get("/api/tiny/bottom_examples/0").json()["data"]["negative_neurons"]
    values = [v for _, v in ranked]
    assert values == sorted(values) and len(ranked) == int((stats["min"] < 0).sum())
    assert ranked[0][0]["neuron"] == stats.sort("min")["neuron"][0]


def test_similar_neurons(client, tiny):
    rows = storage.read(tiny.root, NEURON_COACTIVATION, "tiny", [0]).filter(pl.col("neuron") == 3)
    positions = storage.read(tiny.root, ACTIVATION_SAMPLE_WINDOWS, "tiny")["length"].sum()
    data = client.get("/api/tiny/similar_neurons/0/3").json()["data"]
    assert data["method"] == "pearson-activation-sample"
    assert data["sample_positions"] == positions
    assert len(data["similar"]) == 10 == rows.height
    strengths = [abs(s["correlation"]) for s in data["similar"]]
    assert strengths == sorted(strengths, reverse=True)
    assert all(
        s["sign"] == ("positive" if s["correlation"] >= 0 else "negative") for s in data["similar"]
    )
    assert client.get("/api/tiny/similar_neurons/0").json()["status_code"] == 404


def test_token_search_over_every_neuron(client, tiny):
    index = storage.read(tiny.root, TOKEN_INDEX, "tiny")
    token = (
        index.filter(pl.col("kind") == "activating")
        .group_by("token")
        .len()
        .sort("len")[-1, "token"]
    )
    expected = index.filter((pl.col("token") == token) & (pl.col("kind") != "important"))
    r = client.get("/api/tiny/token-search", params={"query": f"any:{token}", "limit": 1000})
    assert r.status_code == 200
    body = r.json()
    hits = {(d["layer"], d["neuron"]) for d in body["data"]}
    assert set(expected.select("layer", "neuron").iter_rows()) <= hits
    scores = [d["activation"] for d in body["data"] if d["activation"] is not None]
    assert scores == sorted(scores, reverse=True)
    for d in body["data"]:
        assert d["matches"] and all(
            m["source"] in ("examples", "graph", "both") for m in d["matches"]
        )
    neg = client.get("/api/tiny/token-search", params={"query": f"negative:{token}"}).json()
    assert all(m["kind"] == "negative" for d in neg["data"] for m in d["matches"])


def test_token_search_whitespace_and_errors(client, tiny):
    index = storage.read(tiny.root, TOKEN_INDEX, "tiny")
    space = [t for t in index["token"].unique().to_list() if t.strip() == "" and t]
    assert space, "the tiny data has whitespace tokens in its index"
    escaped = space[0].replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    r = client.get("/api/tiny/token-search", params={"query": f"any:{escaped}"})
    assert r.status_code == 200 and r.json()["total"] > 0
    r = client.get("/api/tiny/token-search", params={"query": "sometimes:the"})
    assert r.status_code == 400 and "negative" in r.json()["detail"]
    r = client.get("/api/tiny/token-search", params={"query": "any:zzqqxxnotatoken"})
    assert r.status_code == 200 and r.json()["data"] == []


def test_models_computed_before_answer_missing_data(tiny, tmp_path, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(tiny.root, root)
    for table in (ACTIVATION_SAMPLE_WINDOWS, NEURON_COACTIVATION, TOKEN_INDEX):
        shutil.rmtree(root / table.name)
    monkeypatch.setenv("DEEPDECIPHER_DATA_ROOT", str(root))
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    with TestClient(create_app(ApiSettings())) as c:
        for url in ("/api/tiny/bottom_examples/0/1", "/api/tiny/similar_neurons/0/1"):
            r = c.get(url)
            assert r.status_code == 200 and r.json()["missing_data_types"]
        r = c.get("/api/tiny/token-search", params={"query": "any:the"})
        assert r.status_code == 200 and r.json()["missing_data_types"] == ["token_index"]


def test_real_socket(tiny):
    env = {"DEEPDECIPHER_DATA_ROOT": tiny.root, "DEEPDECIPHER_REGISTRY": str(tiny.registry)}
    with running_server(env) as base:
        assert httpx.get(f"{base}/api/tiny/bottom_examples/0/5").json()["data"]["texts"]
        assert (
            len(httpx.get(f"{base}/api/tiny/similar_neurons/1/5").json()["data"]["similar"]) == 10
        )
        r = httpx.get(f"{base}/api/tiny/token-search", params={"query": "any:\\n"})
        assert r.status_code == 200
        r = httpx.get(f"{base}/api/tiny/token-search", params={"query": "bad"})
        assert r.status_code == 400 and r.json()["status_code"] == 400
