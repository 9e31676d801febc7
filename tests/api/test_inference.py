"""Live routes against a real inference process running the tiny model (no stand-ins).

The inference service runs as its own process on a unix socket (as `deepdecipher serve` starts
it); the API runs in `TestClient` here and as a real `deepdecipher serve` process in the fault test.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import polars as pl
import psutil
import pytest
import torch
from litestar.testing import TestClient
from transformers import AutoTokenizer

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.models import load_bridge
from dd_assets.registry import load_registry
from dd_assets.tables import DATASET_TOKENS, NEURON_STATS
from dd_infer.batcher import Batcher
from dd_infer.errors import Unavailable
from dd_infer.launch import InferenceProcess
from tests.api.test_live import server_process

LOAD_WAIT = 120


@pytest.fixture(scope="module")
def service(tiny):
    proc = InferenceProcess(
        {"DEEPDECIPHER_REGISTRY": str(tiny.registry), "DEEPDECIPHER_DEVICE": "cpu"}
    ).start()
    try:
        yield proc
    finally:
        proc.stop()
    assert proc.proc.poll() is not None


def make_client(tiny, url: str | None, **kw) -> TestClient:
    settings = ApiSettings(
        data_root=tiny.root, registry=str(tiny.registry), refresh_seconds=0, inference_url=url, **kw
    )
    return TestClient(create_app(settings))


def get_live(client, path: str, **params) -> httpx.Response:
    """GET a live route, waiting out the 503s of a process that is starting or loading."""
    start = time.monotonic()
    while True:
        r = client.get(path, params=params)
        if r.status_code != 503:
            return r
        assert "Retry-After" in r.headers, r.text
        assert time.monotonic() - start < LOAD_WAIT, r.text
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(tiny, service):
    with make_client(tiny, service.url) as client:
        yield client


@pytest.fixture(scope="module")
def documents(tiny, tokenizer_dir):
    """(token ids, text) of every stored document whose decoded text re-tokenizes to its ids."""
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = storage.read(tiny.root, DATASET_TOKENS, "tiny").sort("doc_index")
    out = {}
    for doc, ids in zip(rows["doc_index"], rows["token_ids"].to_list(), strict=True):
        text = tok.decode(ids[1:])
        if tok.encode(text, add_special_tokens=False) == ids[1:]:
            out[doc] = (ids, text)
    assert len(out) >= len(rows) // 2, "most documents should round-trip"
    return out


def test_live_activations_equal_stored_neuroscope(api, documents):
    rng = np.random.default_rng(12)
    checked = 0
    for layer, neuron in zip(rng.integers(0, 2, 8), rng.integers(0, 96, 8), strict=True):
        texts = api.get(f"/api/tiny/neuroscope/{layer}/{neuron}").json()["data"]["texts"]
        for stored in texts:
            if stored["data_index"] not in documents:
                continue
            ids, text = documents[stored["data_index"]]
            r = get_live(api, f"/api/tiny/activations/{layer}/{neuron}", text=text)
            assert r.status_code == 200, r.text
            live = r.json()["data"]
            assert live["token_ids"] == ids
            assert live["tokens"] == stored["tokens"]
            np.testing.assert_allclose(live["activations"], stored["activations"], atol=1e-4)
            assert live["max_activation"] == pytest.approx(stored["max_activation"], abs=1e-4)
            stats = api.get(f"/api/tiny/activation_stats/{layer}/{neuron}").json()["data"]
            assert (live["dataset_max"], live["dataset_min"]) == (stats["max"], stats["min"])
            assert "hook_post" in live["method"]
            checked += 1
            break
    assert checked >= 6


def test_n2g_prediction_beside_live_activations(api, tiny):
    graphs = api.get("/api/tiny/neuron2graph/1").json()["data"]["neurons"]
    neuron = graphs[0]["neuron"]
    text = "def main(self):\n    return None"
    live = get_live(api, f"/api/tiny/activations/1/{neuron}", text=text).json()["data"]
    predicted = api.get(f"/api/tiny/neuron2graph-predict/1/{neuron}", params={"text": text})
    assert live["n2g_prediction"] == predicted.json()["data"]
    assert live["tokens"][1:] == live["n2g_prediction"]["tokens"]
    assert live["n2g_note"] is None


def reference_relative(tiny, text: str, layers: list[int]) -> dict[tuple[int, int], float]:
    """Each neuron's peak over the text (after BOS) / its dataset max, from a fresh
    TransformerLens run_with_cache (not the service's fast path)."""
    spec = load_registry(tiny.registry)["tiny"]
    bridge = load_bridge(spec, "cpu")
    ids = [bridge.tokenizer.bos_token_id, *bridge.tokenizer.encode(text, add_special_tokens=False)]
    names = [f"blocks.{layer}.mlp.hook_post" for layer in layers]
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(torch.tensor([ids]), names_filter=lambda n: n in names)
    out = {}
    for layer, name in zip(layers, names, strict=True):
        peak = cache[name][0, 1:].max(dim=0).values.double().round(decimals=6).numpy()
        stats = storage.read(tiny.root, NEURON_STATS, "tiny", [layer]).sort("neuron")
        for neuron, dmax in zip(stats["neuron"], stats["max"], strict=True):
            if dmax > 0:
                out[(layer, neuron)] = peak[neuron] / dmax
    return out


def test_text_search_ranks_first_the_neuron_a_text_was_built_for(api, tiny, documents):
    """The text is a neuron's top document cut right after its peak token: that neuron reaches
    its dataset max there, so relative to it, it fires most."""
    stats = storage.read(tiny.root, NEURON_STATS, "tiny", [1])
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer(tiny))
    found = 0
    for neuron in np.random.default_rng(3).permutation(96)[:30]:
        top = api.get(f"/api/tiny/neuroscope/1/{neuron}").json()["data"]["texts"][0]
        dmax = stats.filter(pl.col("neuron") == neuron)["max"][0]
        if top["data_index"] not in documents or abs(top["max_activation"] - dmax) > 1e-5:
            continue  # the dataset max is not inside this text after BOS
        ids, _ = documents[top["data_index"]]
        peak = top["max_activating_token_index"]
        text = tok.decode(ids[1 : peak + 1])
        if tok.encode(text, add_special_tokens=False) != ids[1 : peak + 1]:
            continue  # the cut re-tokenizes differently
        reference = reference_relative(tiny, text, [1])
        ranked = sorted(reference, key=lambda k: (-reference[k], k))
        if ranked[0] != (1, neuron) or reference[ranked[0]] - reference[ranked[1]] < 1e-3:
            continue  # another neuron also peaks here: not a text built for this one alone
        r = get_live(api, "/api/tiny/text-search", text=text, layer="1", limit=5)
        assert r.status_code == 200, r.text
        body = r.json()
        first = body["data"]["neurons"][0]
        assert (first["layer"], first["neuron"]) == (1, neuron)
        assert first["relative_activation"] == pytest.approx(1.0, abs=1e-4)
        assert first["peak_token_index"] == peak
        assert first["peak_token"] == body["data"]["tokens"][peak] == top["tokens"][peak]
        assert_ranked_like(body["data"]["neurons"], reference, ranked)
        found += 1
        if found == 3:
            break
    assert found >= 1


def assert_ranked_like(neurons: list[dict], reference: dict, ranked: list) -> None:
    """The served page ranks like the reference: the same relative activations in the same
    order (neurons within 1e-4 of each other may swap: the two paths differ by float error)."""
    got = [n["relative_activation"] for n in neurons]
    assert got == pytest.approx([reference[k] for k in ranked[: len(got)]], abs=1e-4)
    for n in neurons:
        assert n["relative_activation"] == pytest.approx(
            reference[(n["layer"], n["neuron"])], abs=1e-4
        )


def tiny_tokenizer(tiny) -> str:
    return load_registry(tiny.registry)["tiny"].loader.tokenizer


def test_text_search_all_layers_paginates(api, tiny):
    text = "import os\nfrom collections import deque"
    reference = reference_relative(tiny, text, [0, 1])
    ranked = sorted(reference, key=lambda k: (-reference[k], k))
    pages = []
    for offset in (0, 7, 14):
        r = get_live(api, "/api/tiny/text-search", text=text, limit=7, offset=offset)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["total"] == len(reference) and data["layers"] == [0, 1]
        assert data["total"] + data["unranked"] == 2 * 96
        pages += data["neurons"]
    assert_ranked_like(pages, reference, ranked)
    assert len({(n["layer"], n["neuron"]) for n in pages}) == 21
    for n in pages:
        assert n["activation"] == pytest.approx(
            n["relative_activation"] * n["dataset_max"], abs=1e-4
        )
    assert r.json()["offset"] == 14 and r.json()["limit"] == 7


BAD = [
    ("/api/tiny/activations/0/3", {"text": ""}, 400, "empty"),
    ("/api/tiny/activations/0/3", {}, 400, "text"),
    ("/api/tiny/activations/0/3", {"text": "a" * 2001}, 400, "2000"),
    ("/api/tiny/activations/0/3", {"text": " word" * 80}, 400, "context of 64"),
    ("/api/tiny/activations/x/3", {"text": "hi"}, 400, "layer"),
    ("/api/tiny/activations/0/-1", {"text": "hi"}, 400, "neuron"),
    ("/api/tiny/activations/2/3", {"text": "hi"}, 404, "layer"),
    ("/api/tiny/activations/0/96", {"text": "hi"}, 404, "neuron"),
    ("/api/nope/activations/0/3", {"text": "hi"}, 404, "model"),
    ("/api/tiny/text-search", {"text": ""}, 400, "empty"),
    ("/api/tiny/text-search", {"text": "é" * 2001}, 400, "2000"),
    ("/api/tiny/text-search", {"text": " word" * 80}, 400, "context of 64"),
    ("/api/tiny/text-search", {"text": "hi", "layer": "x"}, 400, "layer"),
    ("/api/tiny/text-search", {"text": "hi", "layer": "2"}, 404, "layer"),
    ("/api/tiny/text-search", {"text": "hi", "limit": "0"}, 400, "limit"),
    ("/api/tiny/text-search", {"text": "hi", "limit": "101"}, 400, "limit"),
    ("/api/tiny/text-search", {"text": "hi", "offset": "-1"}, 400, "offset"),
    ("/api/nope/text-search", {"text": "hi"}, 404, "model"),
]


@pytest.mark.parametrize(("path", "params", "status", "word"), BAD)
def test_bad_input_is_a_json_error(api, path, params, status, word):
    r = get_live(api, path, **params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status_code"] == status and word in body["detail"].lower()


def test_inference_off_or_down_is_503_json(tiny, tmp_path):
    with make_client(tiny, None) as client:
        r = client.get("/api/tiny/activations/0/3", params={"text": "hi"})
        assert r.status_code == 503 and "inference is off" in r.json()["detail"]
        assert client.get("/api/tiny/neuroscope/0/3").status_code == 200
    with make_client(tiny, f"unix:{tmp_path / 'none.sock'}") as client:
        r = client.get("/api/tiny/text-search", params={"text": "hi"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        assert "not running" in r.json()["detail"]


def test_timeout_is_504_and_the_worker_stays_healthy(tiny, service, api):
    assert get_live(api, "/api/tiny/activations/0/3", text="warm up").status_code == 200
    with make_client(tiny, service.url, inference_timeout=1e-6) as hurried:
        r = hurried.get("/api/tiny/text-search", params={"text": "a slow request"})
        assert r.status_code == 504 and "longer than" in r.json()["detail"]
    r = api.get("/api/tiny/text-search", params={"text": "a slow request"})
    assert r.status_code == 200


def test_queue_bound_refuses_with_retry_after():
    async def fill():
        batcher = Batcher(max_pending=2, max_batch_tokens=64)
        batcher.submit(object(), object())
        batcher.submit(object(), object())
        with pytest.raises(Unavailable) as refused:
            batcher.submit(object(), object())
        batcher.close()
        return refused.value

    refused = asyncio.run(fill())
    assert refused.status_code == 503 and refused.retry_after == 1
    assert "limit 2" in refused.detail


def server_env(tiny, **extra: str) -> dict[str, str]:
    return {
        "DEEPDECIPHER_DATA_ROOT": tiny.root,
        "DEEPDECIPHER_REGISTRY": str(tiny.registry),
        "DEEPDECIPHER_DEVICE": "cpu",
        "DEEPDECIPHER_REFRESH_SECONDS": "0",
        **extra,
    }


def wait_live(base: str, path: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        get_live(http, path, text="warm up")


def test_busy_service_answers_503_with_retry_after(tiny):
    """A queue bound of 1 under 8 concurrent clients: every answer is a 200 or a JSON 503."""
    with server_process(server_env(tiny, DEEPDECIPHER_INFER_QUEUE="1")) as (base, _):
        wait_live(base, "/api/tiny/text-search")

        def hit(i: int) -> httpx.Response:
            url = f"{base}/api/tiny/text-search"
            return httpx.get(url, params={"text": f"text {i} " * 8}, timeout=30)

        statuses: list[int] = []
        deadline = time.monotonic() + 60
        while 503 not in statuses and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(hit, range(32)))
            for r in answers:
                statuses.append(r.status_code)
                assert r.status_code in (200, 503), r.text
                if r.status_code == 503:
                    assert r.headers["Retry-After"] == "1" and "busy" in r.json()["detail"]
        assert 503 in statuses and 200 in statuses


def test_killed_inference_process_only_takes_down_live_routes(tiny):
    """SIGKILL the inference process under load: live routes answer JSON 503s until it is back,
    every other route keeps answering 200 throughout."""
    live_path = "/api/tiny/activations/0/7"
    other = ["/api/tiny/neuroscope/0/7", "/api/tiny/activation_stats/1/3", "/health", "/viz/tiny"]
    with server_process(server_env(tiny)) as (base, proc):
        wait_live(base, live_path)
        (worker,) = [
            c for c in psutil.Process(proc.pid).children() if "dd_infer" in " ".join(c.cmdline())
        ]
        stop = threading.Event()
        seen: list[tuple[str, int, dict | None]] = []

        def load(paths: list[str]) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                while not stop.is_set():
                    for path in paths:
                        r = http.get(
                            path, params={"text": "def f(x):"} if "activ" in path else None
                        )
                        is_json = r.headers.get("content-type", "").startswith("application/json")
                        seen.append((path, r.status_code, r.json() if is_json else None))

        threads = [threading.Thread(target=load, args=([p],)) for p in [live_path, *other]]
        for t in threads:
            t.start()
        time.sleep(1.0)
        worker.send_signal(signal.SIGKILL)
        killed_at = len(seen)
        deadline = time.monotonic() + LOAD_WAIT
        while time.monotonic() < deadline:  # until the restarted process answers again
            time.sleep(0.5)
            after = [s for s in seen[killed_at:] if s[0] == live_path]
            if after and after[-1][1] == 200 and any(status == 503 for _, status, _ in after):
                break
        stop.set()
        for t in threads:
            t.join()
    live = [s for s in seen if s[0] == live_path]
    down = [body for _, status, body in live if status == 503]
    assert down, "the live route never reported the process down"
    assert all(body and body["status_code"] == 503 and body["detail"] for body in down)
    assert {status for _, status, _ in live} <= {200, 503}
    assert live[-1][1] == 200, "the inference process was not restarted"
    others = [s for s in seen if s[0] != live_path]
    assert len(others) > 50 and all(status == 200 for _, status, _ in others)
