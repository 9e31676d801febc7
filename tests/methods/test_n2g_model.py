"""N2G end to end on a model whose neuron is known by construction.

A one-layer attention + MLP model with hand-set weights: attention moves "the previous token is
' of'" into the residual stream, and MLP neuron 0 fires (ReLU, activation 1) exactly on ' the'
when it follows ' of'. N2G, run through the real probe and forward passes, must find that rule:
an activating 'the' with 'of' as important context one token back, and F1 = 1 on held-out text.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.documents import pack_documents
from dd_assets.methods.n2g.augment import EmbeddingAugmenter
from dd_assets.methods.n2g.engine import N2G, Document, N2GConfig, NeuronInput
from dd_assets.methods.n2g.probe import NeuronProbe
from dd_assets.methods.n2g.trie import IGNORE
from dd_assets.models import vocabulary_strings
from dd_assets.text_sources import stdlib_pieces

CTX = 24


def bigram_model(tokenizer, first: int, second: int):
    """The bridge with weights set so neuron 0 computes [token == second and previous == first]."""
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    cfg = TransformerBridgeConfig(
        d_model=8, d_head=4, n_heads=1, n_layers=1, n_ctx=CTX, d_mlp=2,
        d_vocab=len(tokenizer), act_fn="relu", normalization_type=None, seed=0,
    )  # fmt: skip
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tokenizer)
    params = dict(bridge.original_model.named_parameters())

    def param(suffix: str) -> torch.Tensor:
        (name,) = [n for n in params if n.endswith(suffix)]
        return params[name]

    theta, sharp = 2 * math.pi / (4 * CTX), 4000.0
    with torch.no_grad():
        for p in params.values():
            p.zero_()
        emb = param("tok_embed._original_component.weight")
        emb[first, 0] = 1.0  # dim 0: "this token is `first`"
        emb[second, 1] = 1.0  # dim 1: "this token is `second`"
        pos = param("pos._original_component.weight")
        angles = theta * torch.arange(CTX)
        pos[:, 2], pos[:, 3] = torch.cos(angles), torch.sin(angles)  # dims 2-3: position
        # Query at p points at angle p - 1, so the key of position p - 1 wins the softmax.
        q, k = param("q._original_component.weight"), param("k._original_component.weight")
        c, s = math.cos(theta), math.sin(theta)
        q[0, 2], q[0, 3], q[1, 2], q[1, 3] = sharp * c, sharp * s, -sharp * s, sharp * c
        k[0, 2], k[1, 3] = 1.0, 1.0
        param("v._original_component.weight")[0, 0] = 1.0  # value: "is `first`"
        param("o._original_component.weight")[4, 0] = 1.0  # dim 4: "previous is `first`"
        w_in = param("fc_in._original_component.weight")
        w_in[0, 1], w_in[0, 4] = 2.0, 2.0
        param("fc_in._original_component.bias")[0] = -3.0  # fires only if both hold
    bridge.eval()
    return bridge


@pytest.fixture(scope="module")
def setup(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    first, second = tok.encode(" of")[0], tok.encode(" the")[0]
    bridge = bigram_model(tok, first, second)
    docs = pack_documents(stdlib_pieces(), tok.encode, tok.bos_token_id, CTX, 600)
    ids = torch.tensor([d.token_ids for d in docs])
    (acts,) = LayerActivations(bridge, [0])(ids)
    return tok, bridge, ids.numpy(), acts[..., 0].numpy(), first, second


def test_the_hand_set_neuron_computes_the_rule(setup):
    _, _, ids, acts, first, second = setup
    rule = np.zeros_like(ids, dtype=bool)
    rule[:, 1:] = (ids[:, 1:] == second) & (ids[:, :-1] == first)
    assert rule.sum() >= 20
    assert np.all(acts[rule] > 0.9) and np.all(acts[~rule] < 1e-3)


def test_n2g_recovers_the_rule_with_f1_one(setup):
    tok, bridge, ids, acts, _, _ = setup
    top = np.argsort(-acts[:, 1:].max(axis=1), kind="stable")[:20]
    inputs = [NeuronInput(0, float(acts.max()), [Document(ids[d], acts[d], int(d)) for d in top])]
    vocab = vocabulary_strings(tok, len(tok))
    special = set(tok.all_special_ids)
    probe = NeuronProbe(bridge, 0, pad_id=tok.pad_token_id)
    augmenter = EmbeddingAugmenter(bridge.W_E, vocab, special)
    (result,) = N2G(probe, vocab, special, tok.pad_token_id, augmenter, N2GConfig()).run(inputs)

    assert (result.fidelity.precision, result.fidelity.recall, result.fidelity.f1) == (1, 1, 1)
    assert result.fidelity.firing > 0 and set(result.test_docs).isdisjoint(result.train_docs)
    # Token lookup cannot tell ' of the' from other ' the': context is what N2G adds.
    assert result.baseline.recall == 1 and result.baseline.precision < 1
    root = result.graph.prediction.root.children
    assert set(root) == {"the"}
    context = root["the"].children
    assert "of" in context and IGNORE not in context  # 'of' is required, right before 'the'
    assert result.activating == {"the": pytest.approx(1.0, abs=0.05)}
    assert set(result.important) == {"of"}
    # The graph generalises to text it never saw.
    pred = result.graph.prediction.predict(["<|bos|>", " one", " of", " the", " the", " of"])
    assert pred.tolist() == pytest.approx([0, 0, 0, 1.0, 0, 0], abs=0.05)
    assert probe.stats.forward_passes > 0 and probe.stats.tokens > 0
