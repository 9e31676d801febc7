"""LayerActivations' fast path reads exactly what TransformerLens' hook_post would."""

from __future__ import annotations

import pytest
import torch
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge

from dd_assets.methods.activations import LayerActivations


@pytest.fixture(scope="module")
def bridge():
    cfg = TransformerBridgeConfig(
        d_model=32, d_head=8, n_heads=4, n_layers=3, n_ctx=16, d_mlp=48, d_vocab=100,
        act_fn="gelu", normalization_type="LN", seed=0,
    )  # fmt: skip
    return TransformerBridge.boot_native(cfg)


def test_fast_path_equals_run_with_cache(bridge):
    tokens = torch.randint(0, 100, (3, 10), generator=torch.Generator().manual_seed(0))
    reader = LayerActivations(bridge, [0, 2])
    assert reader.uses_fast_path
    got = reader(tokens)
    _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n.endswith("mlp.hook_post"))
    assert torch.equal(got[0], cache["blocks.0.mlp.hook_post"])
    assert torch.equal(got[1], cache["blocks.2.mlp.hook_post"])


def test_other_hooks_go_through_the_bridge(bridge):
    tokens = torch.randint(0, 100, (2, 6), generator=torch.Generator().manual_seed(1))
    reader = LayerActivations(bridge, [1], hook="mlp.hook_pre")
    assert not reader.uses_fast_path
    _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n == "blocks.1.mlp.hook_pre")
    assert torch.equal(reader(tokens)[0], cache["blocks.1.mlp.hook_pre"])
