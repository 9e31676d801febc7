"""Sentence embeddings for semantic explanation search: token descriptions once per model, then
one vector per explanation of each layer."""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets import storage
from dd_assets.methods.explain.semantic import embed_explanations, token_descriptions
from dd_assets.methods.sentence_encoder import ENCODER, default_encoder
from dd_assets.partitions import (
    MODEL_TO_LAYERS,
    model_layer_partitions,
    model_partitions,
    split_key,
)
from dd_assets.resources import ExplainerResource
from dd_assets.tables import DATASET_TOKENS, EXPLANATIONS, TOKEN_DESCRIPTION_VECTORS


@dg.asset(
    partitions_def=model_partitions,
    group_name="neurons",
    kinds={"delta", "numpy"},
    deps=[dg.AssetDep("dataset_tokens")],
)
def token_description_vectors(
    context: dg.AssetExecutionContext, explainer: ExplainerResource
) -> pl.DataFrame:
    """An all-MiniLM-L6-v2 vector for every distinct dataset token, described in words.

    Top-tokens explanations quote dataset tokens; embedding each description once per model,
    not once per layer, is what keeps explanation vectors cheap (SmolLM2: ~5,500 texts instead
    of ~57,000).
    """
    model = context.partition_key
    start = time.monotonic()
    tokens = storage.read(explainer.data_root, DATASET_TOKENS, model, columns=["tokens"])
    descriptions = token_descriptions(tokens["tokens"].explode().drop_nulls().unique().to_list())
    vectors = default_encoder().embed(descriptions)
    context.add_output_metadata(
        {"descriptions": len(descriptions), "seconds": round(time.monotonic() - start, 2)}
    )
    return pl.DataFrame(
        {
            "model": model,
            "description": descriptions,
            "encoder": ENCODER,
            "embedding": pl.Series(vectors).cast(pl.List(pl.Float32)),
        },
        schema_overrides={"model": pl.String, "encoder": pl.String},
    )


@dg.asset(
    partitions_def=model_layer_partitions,
    group_name="neurons",
    kinds={"delta", "numpy"},
    deps=[
        dg.AssetDep("explanations"),
        dg.AssetDep("token_description_vectors", partition_mapping=MODEL_TO_LAYERS),
    ],
    output_required=False,
)
def explanation_embeddings(context: dg.AssetExecutionContext, explainer: ExplainerResource):
    """An all-MiniLM-L6-v2 vector for every explanation of one layer (failed ones have none).

    Prose (LLM) explanations are embedded whole; a top-tokens explanation as the mean of its
    firing tokens described in words, looked up in `token_description_vectors`.
    """
    model, layer = split_key(context.partition_key)
    start = time.monotonic()
    frame = storage.read(
        explainer.data_root,
        EXPLANATIONS,
        model,
        [layer],
        ["neuron", "kind", "explanation", "status"],
    ).filter(pl.col("status") == "ok")
    if not frame.height:
        context.log.warning(f"{model} layer {layer} has no explanations: nothing to embed")
        return
    known = storage.read(explainer.data_root, TOKEN_DESCRIPTION_VECTORS, model)
    known = known.filter(pl.col("encoder") == ENCODER)
    vectors = embed_explanations(
        default_encoder(),
        frame["kind"].to_list(),
        frame["explanation"].to_list(),
        known=dict(zip(known["description"].to_list(), known["embedding"].to_numpy(), strict=True)),
    )
    out = pl.DataFrame(
        {
            "model": model,
            "layer": np.full(frame.height, layer, dtype=np.int32),
            "neuron": frame["neuron"],
            "encoder": ENCODER,
            "embedding": pl.Series(vectors).cast(pl.List(pl.Float32)),
        }
    )
    yield dg.Output(out, metadata={"rows": out.height, "seconds": time.monotonic() - start})
