"""Direct logit effects per neuron, one partition per (model, layer)."""

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.methods.logit_effects import logit_effects as compute_logit_effects
from dd_assets.models import (
    final_norm_centres,
    final_norm_weight,
    layer_w_out,
    model_shape,
    vocabulary_strings,
)
from dd_assets.partitions import MODEL_TO_LAYERS, model_layer_partitions, split_key
from dd_assets.resources import ModelLoader, RegistryResource
from dd_assets.tables import LOGIT_EFFECTS

TOP_K = 10


@dg.asset(
    partitions_def=model_layer_partitions,
    group_name="neurons",
    kinds={"delta", "torch"},
    deps=[dg.AssetDep("model_metadata", partition_mapping=MODEL_TO_LAYERS)],
    output_required=False,
)
def logit_effects(
    context: dg.AssetExecutionContext, registry: RegistryResource, models: ModelLoader
):
    """Top and bottom 10 output tokens of each neuron of one layer: W_out[layer] @ W_U."""
    model, layer = split_key(context.partition_key)
    spec = registry.spec(model)
    bridge = models.bridge(spec)
    shape = model_shape(bridge)
    if layer is None or not 0 <= layer < shape.n_layers:
        context.log.warning(
            f"{model} has {shape.n_layers} layers; partition layer={layer} names none of them, "
            "so nothing is materialized"
        )
        return
    top_v, top_i, bot_v, bot_i = compute_logit_effects(
        layer_w_out(bridge, layer).detach(),
        bridge.W_U.detach(),
        final_norm_weight(bridge),
        k=TOP_K,
        centre=final_norm_centres(bridge),
    )
    vocab = np.asarray(vocabulary_strings(bridge.tokenizer, shape.d_vocab), dtype=object)
    top_i, bot_i = top_i.cpu().numpy(), bot_i.cpu().numpy()
    frame = pl.DataFrame(
        {
            "model": [model] * shape.d_mlp,
            "layer": np.full(shape.d_mlp, layer, dtype=np.int32),
            "neuron": np.arange(shape.d_mlp, dtype=np.int32),
            "top_token_ids": top_i.astype(np.int32),
            "top_tokens": vocab[top_i].tolist(),
            "top_values": top_v.cpu().numpy(),
            "bottom_token_ids": bot_i.astype(np.int32),
            "bottom_tokens": vocab[bot_i].tolist(),
            "bottom_values": bot_v.cpu().numpy(),
        }
    ).cast(dict(LOGIT_EFFECTS.schema))
    yield dg.Output(frame, metadata={"neurons": shape.d_mlp})
