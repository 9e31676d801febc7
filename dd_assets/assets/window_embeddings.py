"""Sentence embeddings of the dataset's fixed token windows, once per model (embedding scores)."""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.methods.explain.windows import WindowGrid, grid_windows
from dd_assets.methods.sentence_encoder import ENCODER, default_encoder
from dd_assets.partitions import model_partitions
from dd_assets.tables import WINDOW_EMBEDDINGS

GRID = WindowGrid()


@dg.asset(partitions_def=model_partitions, group_name="dataset", kinds={"delta", "numpy"})
def window_embeddings(
    context: dg.AssetExecutionContext, dataset_tokens: pl.DataFrame
) -> pl.DataFrame:
    """An all-MiniLM-L6-v2 vector of every consecutive 32-token window of every document.

    Every neuron's embedding score looks its windows up here, so the encoder runs once per
    model, not once per neuron.
    """
    tokens = dataset_tokens.sort("doc_index")
    start = time.monotonic()
    docs, starts, width, texts = grid_windows(
        tokens["doc_index"].to_list(), tokens["tokens"].to_list(), GRID
    )
    vectors = default_encoder().embed(texts)
    seconds = time.monotonic() - start
    context.add_output_metadata(
        {"windows": len(texts), "width": width, "stride": GRID.stride, "seconds": seconds}
    )
    return pl.DataFrame(
        {
            "model": context.partition_key,
            "window": np.arange(len(texts), dtype=np.int32),
            "doc_index": docs,
            "start": starts.astype(np.int32),
            "length": np.full(len(texts), width, dtype=np.int32),
            "encoder": ENCODER,
            "embedding": pl.Series(vectors).cast(pl.List(pl.Float32)),
        }
    ).cast(dict(WINDOW_EMBEDDINGS.schema))
