"""Embedding AUROC of every explanation of one layer: a second score next to the correlation."""

import time

import dagster as dg
import polars as pl

from dd_assets import storage
from dd_assets.assets.window_embeddings import GRID
from dd_assets.methods.explain.embedding_score import SCORER, layer_embedding_scores
from dd_assets.partitions import MODEL_TO_LAYERS, model_layer_partitions, split_key
from dd_assets.resources import ExplainerResource
from dd_assets.tables import (
    ACTIVATION_SAMPLE_WINDOWS,
    EMBEDDING_SCORES,
    EXPLANATION_EMBEDDINGS,
    MODEL_METADATA,
    NEURON_EXAMPLES,
    WINDOW_EMBEDDINGS,
)

EXAMPLE_COLUMNS = [
    "neuron", "kind", "rank", "doc_index", "max_activating_token_index", "max_activation",
]  # fmt: skip


@dg.asset(
    partitions_def=model_layer_partitions,
    group_name="neurons",
    kinds={"delta", "numpy"},
    deps=[
        dg.AssetDep("explanation_embeddings"),
        dg.AssetDep("window_embeddings", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("neuron_examples", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("activation_sample_windows", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("model_metadata", partition_mapping=MODEL_TO_LAYERS),
    ],
    output_required=False,
)
def embedding_scores(context: dg.AssetExecutionContext, explainer: ExplainerResource):
    """Embedding AUROC of every neuron's explanation: do its held-out top windows embed closer
    to the explanation than the scan's uniform random windows? (scorer embedding-auroc-v1)"""
    model, layer = split_key(context.partition_key)
    root = explainer.data_root
    meta = storage.read(root, MODEL_METADATA, model)
    n_layers = int(meta["num_layers"][0]) if meta.height else 0
    if layer is None or not 0 <= layer < n_layers:
        context.log.warning(f"{model} has {n_layers} layers; layer={layer} names none of them")
        return
    start = time.monotonic()
    windows = storage.read(root, WINDOW_EMBEDDINGS, model)
    explained = storage.read(
        root, EXPLANATION_EMBEDDINGS, model, [layer], ["neuron", "encoder", "embedding"]
    )
    if not windows.height or not explained.height:
        context.log.warning(f"{model} layer {layer}: no window or explanation vectors to score")
        return
    encoders = set(windows["encoder"]) | set(explained["encoder"])
    if len(encoders) != 1:
        raise ValueError(f"windows and explanations were embedded by different encoders {encoders}")
    examples = storage.read(root, NEURON_EXAMPLES, model, [layer], EXAMPLE_COLUMNS)
    sample = storage.read(root, ACTIVATION_SAMPLE_WINDOWS, model)
    dim = len(windows["embedding"][0])
    frame = layer_embedding_scores(
        n_neurons=int(meta["layer_size"][0]),
        ctx=int(meta["context_length"][0]),
        examples={c: examples[c].to_numpy() for c in EXAMPLE_COLUMNS},
        explanation_neuron=explained["neuron"].to_numpy(),
        explanation_vectors=explained["embedding"].list.to_array(dim).to_numpy(),
        window_doc=windows["doc_index"].to_numpy(),
        window_start=windows["start"].to_numpy(),
        window_vectors=windows["embedding"].list.to_array(dim).to_numpy(),
        sample_spans=(sample["doc_index"].to_numpy(), sample["start"].to_numpy(),
                      sample["length"].to_numpy()),
        grid=GRID,
    )  # fmt: skip
    frame = frame.with_columns(
        model=pl.lit(model), layer=pl.lit(layer, pl.Int32), encoder=pl.lit(encoders.pop())
    ).cast(dict(EMBEDDING_SCORES.schema))
    scores = frame["score"].drop_nulls()
    yield dg.Output(
        frame,
        metadata={
            "neurons": frame.height,
            f"scored by {SCORER}": scores.len(),
            f"mean score by {SCORER}": float(scores.mean()) if scores.len() else None,
            "unscored": frame["score"].null_count(),
            "seconds": time.monotonic() - start,
        },
    )
