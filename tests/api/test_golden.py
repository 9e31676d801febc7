"""Every route's JSON on the tiny model, replayed against a recorded golden file.

The file records status and body of each request below, over a copy of the tiny model's tables
with one neuron's Neuron2Graph graph removed (a neuron without data for one service). A change
to what the API answers shows up as a diff of ``golden/tiny.json``; regenerate it on purpose with

    DD_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/api/test_golden.py

Paths of the session's temporary folder are replaced by ``<TMP>`` so the file is stable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from tests.ui.conftest import drop_graph, explanation_word, search_token

GOLDEN = Path(__file__).parent / "golden" / "tiny.json"
UPDATE = os.environ.get("DD_UPDATE_GOLDEN") == "1"
NO_GRAPH = (0, 2)
SERVICES = [
    "metadata", "neuroscope", "quantile_examples", "bottom_examples", "similar_neurons",
    "activation_stats", "logit_effects", "neuron2graph", "neuron_explainer", "all",
]  # fmt: skip


def requests(tiny) -> list[str]:
    token, word = search_token(tiny), explanation_word(tiny)
    paths = ["/api", "/health"]
    for service in SERVICES:
        paths += [f"/api/tiny/{service}", f"/api/tiny/{service}/1", f"/api/tiny/{service}/1/17"]
        paths.append(f"/api/tiny/{service}/{NO_GRAPH[0]}/{NO_GRAPH[1]}")
    paths += [
        "/api/tiny/neuroscope?limit=5&offset=3",
        "/api/tiny/neuroscope/0?limit=4",
        f"/api/tiny/neuron2graph-search?query=any:{token}",
        f"/api/tiny/neuron2graph-search?query=activating:{token}&limit=3&offset=1",
        "/api/tiny/neuron2graph-search?query=nope:x",
        f"/api/tiny/token-search?query=any:{token}&limit=5",
        f"/api/tiny/token-search?query=negative:{token}&limit=3&offset=1",
        "/api/tiny/token-search?query=any:%5Cn&limit=3",
        "/api/tiny/token-search?query=sometimes:x",
        f"/api/tiny/explanation-search?q={word}",
        f"/api/tiny/explanation-search?q={word}&limit=2&offset=1",
        "/api/tiny/explanation-search?q=%21%21",
        "/api/tiny/neuron2graph-predict/1/17?text=" + quote("def main():\n    return 1"),
        f"/api/tiny/neuron2graph-predict/{NO_GRAPH[0]}/{NO_GRAPH[1]}?text=x",
        "/api/nope/neuroscope/0/0",
        "/api/tiny/nope/0/0",
        "/api/tiny/neuroscope/2/0",
        "/api/tiny/neuroscope/0/96",
        "/api/tiny/neuroscope/x/0",
        "/api/tiny/neuroscope?limit=0",
        "/api/tiny/logit_effects/0",
        "/api/" + "m" * 3000 + "/neuroscope/0/0",
        "/api/tiny/neuroscope/0/0/extra",
        # live routes without an inference service: their checks before it, then the 503
        "/api/tiny/activations/1/17?text=x",
        "/api/tiny/activations/x/0?text=x",
        "/api/tiny/activations/0/0?text=" + "x" * 2001,
        "/api/tiny/text-search?text=",
        "/api/tiny/text-search?text=x&layer=9",
        "/api/tiny/text-search?text=x",
    ]
    return paths


@pytest.fixture
def golden_client(tiny, data_copy, monkeypatch):
    drop_graph(data_copy, *NO_GRAPH)
    monkeypatch.setenv("DEEPDECIPHER_DATA_ROOT", data_copy)
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    monkeypatch.setenv("DEEPDECIPHER_REFRESH_SECONDS", "0")
    with TestClient(create_app(ApiSettings())) as client:
        yield client


def record(client, tiny, tmp_root: str) -> dict:
    out = {}
    for path in requests(tiny):
        r = client.get(path)
        text = r.text.replace(tmp_root, "<TMP>")
        key = path if len(path) < 200 else path[:60] + f"...({len(path)} chars)"
        out[key] = {"status": r.status_code, "body": json.loads(text)}
    return out


def test_every_route_answers_as_recorded(golden_client, tiny, tmp_path_factory):
    got = record(golden_client, tiny, str(tmp_path_factory.getbasetemp()))
    if UPDATE or not GOLDEN.exists():
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        if not UPDATE:
            pytest.fail(f"{GOLDEN} did not exist; recorded it, rerun")
    want = json.loads(GOLDEN.read_text())
    assert set(got) == set(want), "the recorded requests changed: regenerate on purpose"
    for path, answer in want.items():
        assert got[path] == answer, f"{path} differs from {GOLDEN.name}"
