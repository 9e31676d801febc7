"""Direct logit effect of a neuron: which output tokens its output weights push up or down.

For neuron n of layer l the effect on the logits, ignoring everything downstream, is
``W_out[l, n] * w_ln_final @ W_U`` (methods.md §5, "output logit lens"). Multiplying by the final
norm's weight first matters for models whose bridge does not fold it into W_U. A LayerNorm also
subtracts the mean over d_model before scaling, so for LayerNorm models the row is centred first
(otherwise its mean leaks in as ``mean * w @ W_U``, the same bias for every neuron); RMSNorm does
not centre. The norm's division by the residual's scale is a positive factor and is left out.
"""

from __future__ import annotations

import torch
from jaxtyping import Float


@torch.inference_mode()
def logit_effects(
    W_out: Float[torch.Tensor, "d_mlp d_model"],
    W_U: Float[torch.Tensor, "d_model d_vocab"],
    ln_final_w: Float[torch.Tensor, " d_model"] | None = None,
    k: int = 10,
    chunk: int = 512,
    centre: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k and bottom-k (values, token ids) per neuron, each [d_mlp, k], computed in row chunks.

    `centre`: the final norm is a LayerNorm (subtracts the mean over d_model); `ln_final_w` is the
    norm's effective scale (already ``1 + w`` for norms that store an offset).
    """
    W = W_out.float()
    if centre:
        W = W - W.mean(dim=1, keepdim=True)  # [d_mlp, d_model]
    if ln_final_w is not None:
        W = W * ln_final_w.float()
    top_v, top_i, bot_v, bot_i = [], [], [], []
    for start in range(0, W.shape[0], chunk):
        effects = W[start : start + chunk] @ W_U.float()  # [chunk, d_vocab]
        v, i = effects.topk(k, dim=1)
        top_v.append(v)
        top_i.append(i)
        v, i = effects.topk(k, dim=1, largest=False)
        bot_v.append(v)
        bot_i.append(i)
    return torch.cat(top_v), torch.cat(top_i), torch.cat(bot_v), torch.cat(bot_i)
