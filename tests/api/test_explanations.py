"""The neuron_explainer service and explanation search, over the tiny model's real tables."""

from __future__ import annotations

import httpx
import numpy as np
import polars as pl
import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.query.search import MIN_Z, ExplanationIndex
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.methods.explain.semantic import RRF_K
from dd_assets.methods.sentence_encoder import default_encoder
from dd_assets.tables import EMBEDDING_SCORES, EXPLANATION_EMBEDDINGS, EXPLANATIONS
from tests.api.test_live import running_server


@pytest.fixture
def client(api_env):
    with TestClient(create_app(ApiSettings())) as c:
        yield c


def test_neuron_explainer_neuron_level(client, tiny):
    body = client.get("/api/tiny/neuron_explainer/1/7").json()
    data = body["data"]
    row = storage.read(tiny.root, EXPLANATIONS, "tiny", [1]).filter(pl.col("neuron") == 7)
    assert data["explanation"] == row["explanation"][0]
    want = row["score"][0]
    assert data["score"] == (None if want is None else pytest.approx(want, abs=1e-6))
    assert data["kind"] == "top-tokens" and data["score_status"] == row["score_status"][0]
    assert (data["score"] is None) == data["score_status"].startswith("unscored: ")
    assert data["explainer"] == "offline-tokens-v1" and data["scorer"] == row["scorer"][0]
    assert data["scorer"] in {"token-lookup-v1", "token-class-mean-v1"}  # the fallback, named
    assert data["simulator_mode"] == "offline" and data["status"] == "ok"
    assert data["prompt_version"] == "offline-v1"
    assert not set(data["explain_doc_indices"]) & set(data["score_doc_indices"])
    assert "neuron_explainer" in body["metadata"]["available_services"]


def test_neuron_explainer_layer_and_model_summaries(client):
    layer = client.get("/api/tiny/neuron_explainer/0").json()["data"]
    assert layer["num_neurons"] == 96 and layer["failed"] == 0
    # Two scorers (the token lookup and its fallback): never pooled, so no layer-wide mean.
    by = {b["scorer"]: b for b in layer["by_scorer"]}
    assert set(by) == {"token-lookup-v1", "token-class-mean-v1"}
    assert layer["mean_score"] is None and layer["quartiles"] == [None, None, None]
    assert sum(b["count"] for b in by.values()) == 96
    for b in by.values():
        q25, q50, q75 = b["quartiles"]
        assert q25 <= q50 <= q75 and b["scored"] + b["unscored"] == b["count"]
        assert sum(b["unscored_reasons"].values()) == b["unscored"]
    model = client.get("/api/tiny/neuron_explainer").json()["data"]
    assert [entry["layer"] for entry in model["layers"]] == [0, 1]
    assert model["num_neurons"] == 192
    all_ = client.get("/api/tiny/all/0/3").json()
    assert all_["neuron_explainer"]["data"]["neuron_index"] == {"layer": 0, "neuron": 3}


def test_neuron_explainer_serves_the_embedding_auroc_next_to_the_correlation(client, tiny):
    stored = storage.read(tiny.root, EMBEDDING_SCORES, "tiny", [1])
    for neuron in stored["neuron"].to_list()[:12]:
        data = client.get(f"/api/tiny/neuron_explainer/1/{neuron}").json()["data"]
        row = stored.filter(pl.col("neuron") == neuron).row(0, named=True)
        emb = data["embedding_score"]
        assert emb["scorer"] == "embedding-auroc-v1" and emb["encoder"] == "all-MiniLM-L6-v2"
        assert emb["score"] == (
            None if row["score"] is None else pytest.approx(row["score"], abs=1e-6)
        )
        assert emb["score_status"] == row["score_status"]
        assert (emb["score"] is None) == emb["score_status"].startswith("unscored: ")
        assert (emb["positives"], emb["negatives"]) == (row["positives"], row["negatives"])
        assert emb["negative_source"] == "uniform-sample"
        assert emb["positive_doc_indices"] == row["positive_doc_indices"]
        # Its positives are held-out documents: scored by the correlation, never explained from.
        assert set(emb["positive_doc_indices"]) <= set(data["score_doc_indices"])
        assert not set(emb["positive_doc_indices"]) & set(data["explain_doc_indices"])
        assert data["scorer"] != emb["scorer"]  # the correlation keeps its own scorer and score
    layer = client.get("/api/tiny/neuron_explainer/1").json()["data"]
    assert "embedding-auroc-v1" not in {b["scorer"] for b in layer["by_scorer"]}  # never pooled
    (auroc,) = layer["by_embedding_scorer"]  # one scorer, one explanation kind on the tiny model
    assert auroc["scorer"] == "embedding-auroc-v1" and auroc["kind"] == ["top-tokens"]
    scores = stored["score"].drop_nulls()
    assert (auroc["count"], auroc["scored"]) == (96, scores.len())
    assert auroc["unscored"] == 96 - scores.len() == sum(auroc["unscored_reasons"].values())
    assert auroc["mean_score"] == pytest.approx(scores.mean(), abs=1e-6)
    assert auroc["quartiles"] == pytest.approx(
        [scores.quantile(q, "linear") for q in (0.25, 0.5, 0.75)], abs=1e-6
    )
    assert auroc["share_at_least_0_8"] == pytest.approx((scores >= 0.8).mean(), abs=1e-6)
    model = client.get("/api/tiny/neuron_explainer").json()["data"]
    assert sum(b["count"] for b in model["by_embedding_scorer"]) == 192
    assert model["layers"][1]["by_embedding_scorer"] == layer["by_embedding_scorer"]


def test_neuron_explainer_without_embedding_scores_says_so(tiny, data_copy):
    from tests.ui.conftest import remove_table

    remove_table(data_copy, EMBEDDING_SCORES)
    settings = ApiSettings(data_root=data_copy, registry=str(tiny.registry), refresh_seconds=0)
    with TestClient(create_app(settings)) as c:
        data = c.get("/api/tiny/neuron_explainer/0/3").json()["data"]
        assert data["embedding_score"] is None and data["explanation"]
        layer = c.get("/api/tiny/neuron_explainer/0").json()["data"]
        assert layer["by_embedding_scorer"] == [] and layer["by_scorer"]


def test_bm25_search_finds_explanations_ranked_and_paginated(client, tiny):
    df = storage.read(tiny.root, EXPLANATIONS, "tiny")
    # A word from some explanation: every result must contain it.
    word = "promotes"
    params = {"q": word, "limit": 5, "mode": "bm25"}
    r = client.get("/api/tiny/explanation-search", params=params)
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == word and body["metadata"]["name"] == "tiny"
    assert body["ranking"] == "bm25"
    assert body["total"] == df.filter(pl.col("explanation").str.contains(word)).height
    assert [hit["rank"] for hit in body["data"]] == [1, 2, 3, 4, 5]
    for hit in body["data"]:
        assert word in hit["explanation"]
        assert set(hit) >= {"layer", "neuron", "explanation", "score", "rank"}
    page2 = client.get("/api/tiny/explanation-search", params={**params, "offset": 5})
    assert [hit["rank"] for hit in page2.json()["data"]] == [6, 7, 8, 9, 10]
    first = {(h["layer"], h["neuron"]) for h in body["data"]}
    assert not first & {(h["layer"], h["neuron"]) for h in page2.json()["data"]}
    nothing = client.get("/api/tiny/explanation-search", params={"q": "zzzqqq", "mode": "bm25"})
    assert nothing.json()["data"] == [] and nothing.json()["total"] == 0


def _stored_vectors(tiny) -> tuple[list[tuple[int, int]], np.ndarray, list[str]]:
    """The tiny model's explanations and their stored vectors, in (layer, neuron) order."""
    df = (
        storage.read(tiny.root, EXPLANATIONS, "tiny")
        .filter(pl.col("status") == "ok")
        .join(storage.read(tiny.root, EXPLANATION_EMBEDDINGS, "tiny"), on=["layer", "neuron"])
        .sort("layer", "neuron")
    )
    keys = list(zip(df["layer"].to_list(), df["neuron"].to_list(), strict=True))
    return keys, np.asarray(df["embedding"].to_list()), df["explanation"].to_list()


def test_hybrid_search_fuses_bm25_and_embedding_ranks(client, tiny):
    keys, vectors, texts = _stored_vectors(tiny)
    word = "import"  # in a few explanations' words, and near a few others' tokens
    body = client.get("/api/tiny/explanation-search", params={"q": word, "limit": 100}).json()
    assert body["ranking"] == f"hybrid-rrf(bm25, all-MiniLM-L6-v2, k={RRF_K})"
    bm25 = []
    for offset in range(0, len(keys), 100):
        params = {"q": word, "limit": 100, "offset": offset, "mode": "bm25"}
        bm25 += client.get("/api/tiny/explanation-search", params=params).json()["data"]
    # Brute force: each list gives 1 / (k + rank); the embedding list is the rows nearest the
    # query (at most 100, MIN_Z standard deviations above the mean), by the stored vectors.
    cosine = vectors @ default_encoder().embed([word])[0]
    floor = cosine.mean() + MIN_Z * cosine.std()
    near = [i for i in np.argsort(-cosine, kind="stable")[:100] if cosine[i] >= floor]
    fused: dict[tuple[int, int], float] = {}
    for rank, hit in enumerate(bm25, 1):
        key = (hit["layer"], hit["neuron"])
        fused[key] = fused.get(key, 0.0) + 1 / (RRF_K + rank)
    for rank, i in enumerate(near, 1):
        fused[keys[i]] = fused.get(keys[i], 0.0) + 1 / (RRF_K + rank)
    assert body["total"] == len(fused) and near and bm25
    got = [(h["layer"], h["neuron"]) for h in body["data"]]
    assert [round(fused[k], 6) for k in got] == [h["relevance"] for h in body["data"]]
    assert sorted(fused.values(), reverse=True)[: len(got)] == pytest.approx(
        [fused[k] for k in got]
    )
    for h in body["data"]:
        i = keys.index((h["layer"], h["neuron"]))
        assert h["similarity"] == pytest.approx(float(cosine[i]), abs=1e-5)
        assert (h["bm25"] is not None) == (word in texts[i]) and h["kind"] == "top-tokens"


def test_meaning_finds_explanations_that_share_no_word(client, tiny):
    keys, vectors, texts = _stored_vectors(tiny)
    # The tiny model's top-tokens explanations quote tokens such as ")" and "]": no word of
    # "closing brackets" occurs in them, so BM25 finds nothing and the embedding does the work.
    q = "closing brackets"
    assert (
        client.get("/api/tiny/explanation-search", params={"q": q, "mode": "bm25"}).json()["total"]
        == 0
    )
    hits = client.get("/api/tiny/explanation-search", params={"q": q, "limit": 5}).json()["data"]
    assert hits and all(h["bm25"] is None for h in hits)
    top = [texts[keys.index((h["layer"], h["neuron"]))] for h in hits]
    assert any('")"' in t or '"]"' in t or '"}"' in t for t in top[:3]), top
    embedding = client.get(
        "/api/tiny/explanation-search", params={"q": q, "limit": 5, "mode": "embedding"}
    ).json()
    assert embedding["ranking"] == "embedding-cosine(all-MiniLM-L6-v2)"
    assert [h["similarity"] for h in embedding["data"]] == sorted(
        (h["similarity"] for h in embedding["data"]), reverse=True
    )
    # Unrelated text is close to no explanation in particular: no match, not 100 poor ones.
    nothing = client.get("/api/tiny/explanation-search", params={"q": "zzzqqq"}).json()
    assert nothing["total"] == 0 and nothing["data"] == []


def test_search_mode_must_be_known(client):
    r = client.get("/api/tiny/explanation-search", params={"q": "x", "mode": "fuzzy"})
    assert r.status_code == 400 and "mode" in r.json()["detail"]


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ("", 400, "empty"),
        ("   ", 400, "empty"),
        ("!!!", 400, "no word"),
        ("a" * 201, 400, "too long"),
        (None, 400, "q"),
    ],
)
def test_search_rejects_bad_queries_with_json(client, query, status, fragment):
    params = {} if query is None else {"q": query}
    r = client.get("/api/tiny/explanation-search", params=params)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    assert fragment in r.json()["detail"]


def test_search_bad_paging_and_unknown_model(client):
    for params in ({"q": "x", "limit": 0}, {"q": "x", "limit": 101}, {"q": "x", "offset": -1}):
        r = client.get("/api/tiny/explanation-search", params=params)
        assert r.status_code == 400 and r.json()["status_code"] == 400
    r = client.get("/api/nope/explanation-search", params={"q": "x"})
    assert r.status_code == 404 and "not found" in r.json()["detail"]


def test_index_ranks_by_bm25_then_score():
    frame = pl.DataFrame(
        {
            "layer": [0, 0, 1, 1],
            "neuron": [0, 1, 0, 1],
            "explanation": ["dates and years", "years years", "code", "years in code"],
            "kind": ["llm"] * 4,
            "score": [0.5, None, 0.9, 0.2],
            "status": ["ok", "ok", "ok", "failed: x"],
        }
    )
    index = ExplanationIndex.build(frame)
    hits, total, ranking = index.search("years", 10, 0)
    assert total == 2 and ranking == "bm25"  # the failed row is not indexed; no vectors
    assert [(h.layer, h.neuron) for h in hits] == [(0, 1), (0, 0)]  # tf 2 beats tf 1
    hits, total, _ = index.search("years dates", 10, 0)
    assert total == 1 and hits[0].neuron == 0
    assert np.isnan(index.score[1]) and hits[0].score == 0.5


def test_search_on_a_real_socket(tiny):
    env = {"DEEPDECIPHER_DATA_ROOT": tiny.root, "DEEPDECIPHER_REGISTRY": str(tiny.registry)}
    with running_server(env) as base:
        r = httpx.get(f"{base}/api/tiny/explanation-search", params={"q": "tokens"})
        assert r.status_code == 200 and r.json()["total"] > 0
        r = httpx.get(f"{base}/api/tiny/explanation-search", params={"q": ""})
        assert r.status_code == 400 and r.json()["status_code"] == 400
        r = httpx.get(f"{base}/api/tiny/neuron_explainer/0/5")
        assert r.status_code == 200 and "explanation" in r.json()["data"]
        assert r.json()["data"]["embedding_score"]["scorer"] == "embedding-auroc-v1"


def test_vectors_built_from_shared_parts_equal_the_stored_ones(api_env, tiny):
    from dd_api.query.search import explanation_index
    from dd_api.query.store import DataStore

    keys, stored, _ = _stored_vectors(tiny)
    index = explanation_index(DataStore(ApiSettings()), "tiny")
    assert index.vectors is not None and len(index.layer) == len(keys)
    # Top-tokens rows are sums of the model's token description vectors: the same vectors
    # as the pipeline stored, without holding [rows x 384] floats in the API.
    assert index.vectors.units.shape[0] < len(keys) * 3
    np.testing.assert_allclose(index.vectors.vectors(np.arange(len(keys))), stored, atol=1e-5)


def test_prose_explanations_use_their_stored_vectors():
    from dd_api.query.explanation_vectors import ExplanationVectors

    rng = np.random.default_rng(0)
    units = rng.standard_normal((3, 8)).astype(np.float32)
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    descriptions = pl.DataFrame(
        {"description": ["comma", "closing parenthesis bracket", "def"], "embedding": units}
    )
    prose = rng.standard_normal(8).astype(np.float32)
    prose /= np.linalg.norm(prose)
    vectors = ExplanationVectors.build(
        ["top-tokens", "llm", "top-tokens", "llm"],
        ['tokens ",", ")"', "commas in lists", 'tokens ","; promotes "x"', "never embedded"],
        descriptions,
        lambda rows: {r: prose for r in rows if r == 1},
        "test-encoder",
    )
    mean = (units[0] + units[1]) / 2
    want = np.stack([mean / np.linalg.norm(mean), prose, units[0], np.zeros(8)])
    np.testing.assert_allclose(vectors.vectors(np.arange(4)), want, atol=1e-6)
    q = units[1]
    np.testing.assert_allclose(vectors.cosine(q), want @ q, atol=1e-6)
