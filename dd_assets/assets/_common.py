"""Small helpers shared by the asset modules."""

import time
from collections.abc import Callable

import dagster as dg
import numpy as np
import polars as pl
import torch

# Set by the CLI to drive its progress bar; Dagster runs log instead.
progress_hook: Callable[[str, int, int], None] | None = None


def progress_logger(context: dg.AssetExecutionContext, what: str, every_s: float = 10.0):
    """A `progress(done, total)` callback that logs to Dagster at most every `every_s` seconds."""
    last = [0.0]
    start = time.monotonic()

    def progress(done: int, total: int) -> None:
        if progress_hook is not None:
            progress_hook(what, done, total)
        now = time.monotonic()
        if now - last[0] >= every_s or done == total:
            last[0] = now
            rate = done / max(now - start, 1e-9)
            context.log.info(f"{what}: {done}/{total} ({rate:.1f}/s)")

    return progress


def tokens_tensor(dataset_tokens: pl.DataFrame) -> torch.Tensor:
    """[doc, pos] int64 token ids, row i = doc_index i."""
    frame = dataset_tokens.sort("doc_index")
    if frame.height and frame["doc_index"][-1] != frame.height - 1:
        raise ValueError("dataset_tokens doc_index is not 0..n-1")
    ids = np.asarray(frame["token_ids"].to_list(), dtype=np.int64)
    return torch.from_numpy(ids)


def list_matrix(column: pl.Series) -> np.ndarray:
    """A list column whose lists share one length as a [rows, length] array.

    Read through polars' fixed-width Array type instead of `to_list()`: the activation sample's
    46,080 lists of 2,048 floats took ~19 s as Python lists, milliseconds this way. Lists of
    different lengths raise; so do nulls, which the Array conversion would turn into NaN.
    """
    width = int(column.list.len()[0]) if len(column) else 0
    if column.null_count() or (width and column.explode().null_count()):
        raise ValueError(f"{column.name}: null lists or values")
    return column.list.to_array(width).to_numpy()
