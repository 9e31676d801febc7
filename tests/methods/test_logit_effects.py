import pytest
import torch

from dd_assets.methods.logit_effects import logit_effects


def test_matches_full_product_with_final_norm():
    g = torch.Generator().manual_seed(1)
    W_out, W_U, w = torch.randn(20, 8, generator=g), torch.randn(8, 50, generator=g), torch.rand(8)
    top_v, top_i, bot_v, bot_i = logit_effects(W_out, W_U, w, k=4, chunk=7)
    full = (W_out * w) @ W_U
    ev, ei = full.topk(4, dim=1)
    bv, bi = full.topk(4, dim=1, largest=False)
    torch.testing.assert_close(top_v, ev)
    torch.testing.assert_close(bot_v, bv)
    assert torch.equal(top_i, ei) and torch.equal(bot_i, bi)


def test_centres_rows_for_layernorm():
    g = torch.Generator().manual_seed(2)
    W_out, W_U, w = (
        torch.randn(12, 8, generator=g) + 3.0,
        torch.randn(8, 40, generator=g),
        torch.rand(8),
    )
    top_v, top_i, _, _ = logit_effects(W_out, W_U, w, k=5, centre=True)
    full = ((W_out - W_out.mean(1, keepdim=True)) * w) @ W_U
    ev, ei = full.topk(5, dim=1)
    torch.testing.assert_close(top_v, ev)
    assert torch.equal(top_i, ei)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory, tokenizer_dir):
    """A tiny GPT-2-architecture model (LayerNorm) saved to a local folder: no download."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2, n_inner=64,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():  # non-trivial norm parameters, so centring and scale both matter
        model.transformer.ln_f.weight.uniform_(0.5, 1.5)
        model.transformer.ln_f.bias.normal_(0, 0.5)
    directory = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def test_layernorm_model_matches_the_bridges_unembedding(gpt2_dir):
    """A residual holding only a neuron's output row, through the bridge's own ln_final and
    unembed, moves the logits (relative to an empty residual) in exactly the computed direction,
    up to the norm's positive 1/scale factor."""
    from dd_assets.models import final_norm_centres, final_norm_weight, layer_w_out, load_bridge
    from dd_assets.registry import parse_registry

    spec = parse_registry(
        {"models": [{"name": "gpt2-tiny", "loader": {"kind": "local", "path": str(gpt2_dir)}}]}
    )["gpt2-tiny"]
    bridge = load_bridge(spec, "cpu")
    assert final_norm_centres(bridge)
    layer, k = 1, 10
    stacked = bridge.W_out
    for i in range(stacked.shape[0]):  # the asset's per-block read is the stacked tensor's row,
        w = layer_w_out(bridge, i)  # laid out alike (products over a transposed view round apart)
        assert torch.equal(w, stacked[i]) and w.stride() == stacked[i].stride()
    W_out = layer_w_out(bridge, layer).detach()  # [d_mlp, d_model]
    top_v, top_i, bot_v, bot_i = logit_effects(
        W_out, bridge.W_U.detach(), final_norm_weight(bridge), k=k, centre=True
    )
    with torch.inference_mode():
        rows = W_out[:5, None, :]  # [neuron, pos=1, d_model]
        logits = bridge.unembed(bridge.ln_final(rows))[:, 0]
        empty = bridge.unembed(bridge.ln_final(torch.zeros_like(rows)))[:, 0]
    direction = logits - empty  # [neuron, d_vocab]
    for n in range(5):
        expected_v, expected_i = direction[n].topk(k)
        assert torch.equal(top_i[n], expected_i)
        ratio = direction[n, top_i[n]] / top_v[n]
        torch.testing.assert_close(ratio, ratio.mean().expand_as(ratio), rtol=1e-4, atol=1e-6)
        assert ratio.mean() > 0
        assert torch.equal(bot_i[n], direction[n].topk(k, largest=False).indices)
    # Without centring the ranking differs from the model's own path.
    uncentred = logit_effects(W_out, bridge.W_U.detach(), final_norm_weight(bridge), k=k)[1]
    assert not torch.equal(uncentred[:5], top_i[:5])
