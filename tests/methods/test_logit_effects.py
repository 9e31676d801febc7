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
