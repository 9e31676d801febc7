"""N2G saliency's masked copies: sharing each original's prefix gives the numbers of running every
copy whole, on a Hugging Face Llama (gated MLP, rotary positions, grouped keys) through the bridge;
models that cannot share fall back, and so does a model whose shared path disagrees."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from dd_assets.methods.n2g.masked_copies import SharedPrefix, masked_copies
from dd_assets.methods.n2g.probe import NeuronProbe
from dd_assets.models import load_bridge
from dd_assets.registry import load_registry
from tests.helpers import write_registry

MASK = 1


@pytest.fixture(scope="module")
def llama(llama_dir, tmp_path_factory):
    entry = {"name": "local-llama", "loader": {"kind": "local", "path": str(llama_dir)}}
    registry = write_registry(tmp_path_factory.mktemp("reg") / "models.yaml", [entry])
    return load_bridge(load_registry(registry)["local-llama"], "cpu")


def sequences(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([[0], rng.integers(3, 900, size=n - 1)]).astype(np.int64) for n in lengths
    ]


def assert_same(got, want) -> None:
    assert len(got) == len(want)
    for (a0, am), (b0, bm) in zip(got, want, strict=True):
        assert am.shape == bm.shape == (len(b0) - 1, len(b0))
        np.testing.assert_allclose(a0, b0, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(am, bm, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", [0, 2])
@pytest.mark.parametrize("max_batch_tokens", [16, 4096])
def test_shared_prefixes_equal_whole_copies(llama, layer, max_batch_tokens):
    """Lengths 1 to 33 (no copies up to many), several groups and passes when batches are small."""
    seqs = sequences([9, 1, 33, 2, 17, 17, 5])
    neurons = np.asarray([0, 3, 79, 5, 11, 11, 40])
    probe = NeuronProbe(llama, layer, pad_id=0, max_batch_tokens=max_batch_tokens)
    assert probe.shares_prefixes
    probe.masked_copies(seqs[:1], neurons[:1], MASK)  # the first-use check
    assert probe.shares_prefixes  # it agreed
    before = probe.stats.tokens
    got = probe.masked_copies(seqs, neurons, MASK)
    run = probe.stats.tokens - before
    assert_same(got, masked_copies(probe, seqs, neurons, MASK))
    # Each copy's positions before the masked one are the original's.
    a0, masked = got[2]
    for k in range(1, len(a0)):
        assert np.array_equal(masked[k - 1, :k], a0[:k])
    # About half the tokens of the whole copies.
    whole = sum(len(s) ** 2 for s in seqs)
    assert run == sum(len(s) * (len(s) + 1) // 2 for s in seqs) < 0.6 * whole


def test_a_disagreeing_shared_path_falls_back(llama, caplog, monkeypatch):
    seqs = sequences([6, 8])
    neurons = np.asarray([1, 2])
    probe = NeuronProbe(llama, 1, pad_id=0)
    assert probe.shares_prefixes
    right = SharedPrefix.__call__

    def wrong(self, seqs, neurons, mask_id):
        return [(a0, masked + 0.5) for a0, masked in right(self, seqs, neurons, mask_id)]

    monkeypatch.setattr(SharedPrefix, "__call__", wrong)
    with caplog.at_level(logging.WARNING):
        got = probe.masked_copies(seqs, neurons, MASK)
    assert not probe.shares_prefixes
    assert "disagrees" in caplog.text
    assert_same(got, masked_copies(probe, seqs, neurons, MASK))


def test_native_models_run_whole_copies(tiny_bridge):
    probe = NeuronProbe(tiny_bridge, 1, pad_id=0)
    seqs = sequences([5, 3])
    neurons = np.asarray([0, 7])
    got = probe.masked_copies(seqs, neurons, MASK)
    assert_same(got, masked_copies(probe, seqs, neurons, MASK))


@pytest.fixture(scope="module")
def tiny_bridge(tokenizer_dir):
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = TransformerBridgeConfig(
        d_model=16, d_head=4, n_heads=4, n_layers=2, n_ctx=32, d_mlp=24,
        d_vocab=len(tok), act_fn="gelu", seed=0,
    )  # fmt: skip
    torch.manual_seed(0)
    return TransformerBridge.boot_native(cfg, tokenizer=tok).eval()
