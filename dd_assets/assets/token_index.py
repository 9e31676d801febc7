"""The whole-model token index behind token search: every neuron's examples plus N2G graphs."""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.methods.token_index import example_entries, graph_entries, index_key, merge_entries
from dd_assets.partitions import MODEL_TO_LAYERS, model_partitions
from dd_assets.resources import DeltaTables
from dd_assets.tables import (
    DATASET_TOKENS,
    MODEL_METADATA,
    N2G_GRAPHS,
    NEURON_EXAMPLES,
    NEURON_STATS,
    TOKEN_INDEX,
)


@dg.asset(
    partitions_def=model_partitions,
    group_name="neurons",
    kinds={"delta"},
    deps=[
        dg.AssetDep("n2g_graphs", partition_mapping=MODEL_TO_LAYERS),
        "neuron_examples",
        "neuron_stats",
        "dataset_tokens",
    ],
)
def token_index(context: dg.AssetExecutionContext, tables: DeltaTables) -> pl.DataFrame:
    """Token -> neurons over every neuron: activating, negative and N2G tokens with their source."""
    model = context.partition_key
    start = time.monotonic()
    docs = tables.read(DATASET_TOKENS, model, None, ["doc_index", "tokens"]).sort("doc_index")
    strings = np.asarray(docs["tokens"].to_list(), dtype=object)  # [doc, pos]
    keys = {t: index_key(t) for t in np.unique(strings.astype(str))}
    doc_keys = np.vectorize(keys.__getitem__, otypes=[object])(strings)
    n_layers = int(tables.read(MODEL_METADATA, model)["num_layers"][0])
    parts = []
    for layer in range(n_layers):  # a layer at a time: examples are the bulk of the data
        examples = tables.read(
            NEURON_EXAMPLES, model, [layer], ["layer", "neuron", "kind", "doc_index", "activations"]
        ).filter(pl.col("kind") != "quantile")
        stats = tables.read(NEURON_STATS, model, [layer], ["layer", "neuron", "max", "min"])
        parts.append(example_entries(examples, stats, doc_keys))
    graphs = tables.read(
        N2G_GRAPHS,
        model,
        None,
        ["layer", "neuron", "activating_tokens", "activating_values", "important_tokens"],
    )
    frame = merge_entries(pl.concat(parts), graph_entries(graphs))
    frame = frame.with_columns(model=pl.lit(model)).cast(dict(TOKEN_INDEX.schema))
    context.add_output_metadata(
        {
            "entries": frame.height,
            "tokens": frame["token"].n_unique(),
            "neurons": frame.select("layer", "neuron").n_unique(),
            "seconds": time.monotonic() - start,
        }
    )
    return frame
