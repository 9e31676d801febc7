"""Sentence embeddings of one layer's explanations, for semantic explanation search."""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets import storage
from dd_assets.methods.explain.semantic import embed_explanations
from dd_assets.methods.sentence_encoder import ENCODER, default_encoder
from dd_assets.partitions import model_layer_partitions, split_key
from dd_assets.resources import ExplainerResource
from dd_assets.tables import EXPLANATIONS


@dg.asset(
    partitions_def=model_layer_partitions,
    group_name="neurons",
    kinds={"delta", "numpy"},
    deps=[dg.AssetDep("explanations")],
    output_required=False,
)
def explanation_embeddings(context: dg.AssetExecutionContext, explainer: ExplainerResource):
    """An all-MiniLM-L6-v2 vector for every explanation of one layer (failed ones have none).

    Prose (LLM) explanations are embedded whole; a top-tokens explanation as the mean of its
    firing tokens described in words, each distinct description embedded once.
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
    vectors = embed_explanations(
        default_encoder(), frame["kind"].to_list(), frame["explanation"].to_list()
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
