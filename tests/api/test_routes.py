"""API routes over the tiny model's real Delta tables, through Litestar's TestClient."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings


@pytest.fixture
def client(api_env):
    with TestClient(create_app(ApiSettings())) as c:
        yield c


def test_index_lists_the_model_with_deepdecipher_metadata(client):
    body = client.get("/api").json()
    (meta,) = body["models"]
    for key in (
        "name", "num_layers", "layer_size", "activation_function", "num_total_neurons",
        "num_total_parameters", "dataset", "available_services",
    ):  # fmt: skip
        assert key in meta
    assert meta["num_total_neurons"] == 2 * 96
    assert set(meta["available_services"]) >= {"neuroscope", "activation_stats", "logit_effects"}


def test_neuroscope_neuron_shape(client):
    r = client.get("/api/tiny/neuroscope/1/17")
    assert r.status_code == 200
    body = r.json()
    data = body["data"]
    assert data["neuron_index"] == {"layer": 1, "neuron": 17}
    assert len(data["texts"]) == 5
    for text in data["texts"]:
        assert len(text["tokens"]) == len(text["activations"]) == 24
        assert text["max_activation"] == max(text["activations"][1:])
        assert text["activations"][text["max_activating_token_index"]] == text["max_activation"]
        assert (
            text["min_range"]
            <= text["min_activation"]
            <= text["max_activation"]
            <= text["max_range"]
        )
    maxima = [t["max_activation"] for t in data["texts"]]
    assert maxima == sorted(maxima, reverse=True)
    assert body["metadata"]["name"] == "tiny"


def test_important_neurons_sorted_descending(client):
    layer = client.get("/api/tiny/neuroscope/0").json()["data"]
    assert layer["num_neurons"] == 96
    ranges = [r for _, r in layer["important_neurons"]]
    assert ranges == sorted(ranges, reverse=True)
    model = client.get("/api/tiny/neuroscope").json()["data"]["important_neurons"]
    assert len(model) == 192
    assert {n["layer"] for n, _ in model} == {0, 1}
    assert [r for _, r in model] == sorted((r for _, r in model), reverse=True)


def test_metadata_is_not_duplicated(client):
    body = client.get("/api/tiny/metadata/0/0").json()
    assert body["data"]["name"] == "tiny" and body["metadata"] is None


def test_extra_services(client):
    stats = client.get("/api/tiny/activation_stats/0/5").json()["data"]
    assert stats["min"] <= stats["mean"] <= stats["max"]
    hist = stats["histogram"]
    assert len(hist["edges"]) == len(hist["counts"]) + 1
    assert hist["edges"][0] == pytest.approx(stats["min"], abs=1e-6)  # stats are 6 dp
    assert hist["edges"][-1] == pytest.approx(stats["max"], abs=1e-6)
    # 40 documents x every 4th of their 23 non-BOS positions
    assert sum(hist["counts"]) == hist["sampled_positions"] == 40 * 6 == stats["count"] // 23 * 6
    logits = client.get("/api/tiny/logit_effects/1/5").json()["data"]
    assert len(logits["top"]) == len(logits["bottom"]) == 10
    assert logits["top"][0]["value"] >= logits["top"][-1]["value"] > logits["bottom"][-1]["value"]
    quantiles = client.get("/api/tiny/quantile_examples/0/5").json()["data"]
    assert [b["band"] for b in quantiles["bands"]] == [
        "0.00-0.50", "0.50-0.90", "0.90-0.99", "0.99-1.00",
    ]  # fmt: skip


def test_missing_services_answer_like_deepdecipher(tiny, data_copy, monkeypatch):
    """A table a model has no data in yet is reported, not an error (here: no explanations)."""
    shutil.rmtree(Path(data_copy) / "explanations")
    monkeypatch.setenv("DEEPDECIPHER_DATA_ROOT", data_copy)
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    monkeypatch.setenv("DEEPDECIPHER_REFRESH_SECONDS", "0")
    with TestClient(create_app(ApiSettings())) as client:
        r = client.get("/api/tiny/neuron_explainer/0/1")
        assert r.status_code == 200
        assert r.json()["missing_data_types"] == ["explanations"]
        assert "data" not in r.json()
        body = client.get("/api/tiny/all/0/3").json()
        assert body["neuron_explainer"]["missing_data_types"] == ["explanations"]
        assert "no data for layer 0" in body["neuron_explainer"]["detail"]
        meta = client.get("/api/tiny/metadata").json()["data"]
        assert "neuron_explainer" not in meta["available_services"]


def test_all_service(client):
    body = client.get("/api/tiny/all/0/3").json()
    assert body["neuroscope"]["data"]["neuron_index"] == {"layer": 0, "neuron": 3}
    assert body["neuron2graph"]["data"]["neuron_index"] == {"layer": 0, "neuron": 3}
    assert "explanation" in body["neuron_explainer"]["data"]
    assert "error" in client.get("/api/tiny/all/0").json()["logit_effects"]


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/api/nope/neuroscope/0/0", 404, "model 'nope' not found"),
        ("/api/tiny/nope/0/0", 404, "service 'nope' not found"),
        ("/api/tiny/neuroscope/2/0", 404, "out of range"),
        ("/api/tiny/neuroscope/0/96", 404, "out of range"),
        ("/api/tiny/neuroscope/0/99999999999999999999", 404, "out of range"),
        ("/api/tiny/neuroscope/-1/0", 400, "non-negative integer"),
        ("/api/tiny/neuroscope/0/-3", 400, "non-negative integer"),
        ("/api/tiny/neuroscope/x/0", 400, "non-negative integer"),
        ("/api/tiny/neuroscope/1.5/0", 400, "non-negative integer"),
        ("/api/tiny/neuroscope/0/%C2%B2", 400, "non-negative integer"),
        ("/api/tiny/logit_effects/0", 404, "no layer-level data"),
        ("/api/" + "m" * 1500 + "/neuroscope/0/0", 404, "not found"),
        ("/api/" + "m" * 5000 + "/neuroscope/0/0", 414, "URL too long"),
        ("/api/tiny/neuroscope/0/0?q=" + "a" * 5000, 414, "URL too long"),
        ("/api/tiny%2F..%2Fx/neuroscope/0/0", 404, "no such route"),
        ("/api/..%2Ftiny/neuroscope/0/0", 404, "no such route"),
        ("/api/tiny/neuroscope/..%2F0/0", 404, "no such route"),
        ("/api/%2e%2e/neuroscope/0/0", 404, "not found"),
        ("/api/tiny/neuroscope/0/%2e%2e", 400, "non-negative integer"),
        ("/api/tiny/neuroscope/1%2F1/0", 404, "no such route"),
        ("/api/tiny/neuroscope/0/0?limit=-1&offset=abc", 200, ""),
        ("/api/tiny/neuroscope/0/0/extra", 404, "no such route"),
    ],
)
def test_bad_input_gets_a_json_error(client, path, status, fragment):
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    if status != 200:  # unknown query parameters are ignored
        assert fragment in r.json()["detail"]
        assert len(r.text) < 1000  # long input is not echoed back whole


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH", "TRACE"])
def test_read_only(client, method):
    before = client.get("/api/tiny/neuroscope/0/0").json()
    r = client.request(method, "/api/tiny/neuroscope/0/0", content=b'{"texts": []}')
    assert r.status_code == 405
    assert client.get("/api/tiny/neuroscope/0/0").json() == before  # nothing changed


def test_cors_and_openapi(client):
    r = client.get("/api/tiny/metadata", headers={"Origin": "https://example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "GET"}
    r = client.options("/api/tiny/neuroscope/0/0", headers=preflight)
    assert r.status_code == 204 and "GET" in r.headers["access-control-allow-methods"]
    spec = client.get("/schema/openapi.json").json()
    assert "/api/{model}/{service}/{layer}/{neuron}" in spec["paths"]
    page = client.get("/schema/swagger")
    assert page.status_code == 200 and "/static/swagger-ui/swagger-ui-bundle.js" in page.text
    js = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000  # served locally, works offline


def test_important_neurons_paginate(client):
    full = client.get("/api/tiny/neuroscope").json()["data"]["important_neurons"]
    page = client.get("/api/tiny/neuroscope?limit=10&offset=5").json()["data"]
    assert page["important_neurons"] == full[5:15] and page["total"] == 192
    layer = client.get("/api/tiny/neuroscope/1?limit=3").json()["data"]
    assert len(layer["important_neurons"]) == 3 and layer["total"] == 96
    for query in ("limit=0", "limit=x", "offset=-1", "limit=1000000000"):
        r = client.get(f"/api/tiny/neuroscope?{query}")
        assert r.status_code == 400 and r.json()["status_code"] == 400


def test_optional_rate_limit(api_env):
    settings = ApiSettings(rate_limit_per_minute=5)
    with TestClient(create_app(settings)) as c:
        codes = [c.get("/api/tiny/metadata").status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        assert c.get("/health").status_code == 200  # liveness is never limited
