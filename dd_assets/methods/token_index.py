"""The token index over every neuron: which tokens make a neuron fire (or go most negative).

From each neuron's top examples, a token is ``activating`` where its activation reaches
``fraction`` x the neuron's dataset max; from its bottom examples, ``negative`` where it reaches
``fraction`` x the dataset min. Neuron2Graph graphs, where present, add their activating and
important tokens; every entry says whether it came from the examples, the graph or both. Frames
in, frames out: no storage, no Dagster.
"""

from __future__ import annotations

import numpy as np
import polars as pl

FRACTION = 0.5
KEYS = ["token", "kind", "layer", "neuron"]


def index_key(token: str) -> str:
    """Search key: trimmed and lower-cased; a whitespace-only token ("\\n", " ") is kept as is.

    >>> [index_key(t) for t in [" The", "\\n", " ", ","]]
    ['the', '\\n', ' ', ',']
    """
    return token.strip().lower() or token


def example_entries(
    examples: pl.DataFrame,
    stats: pl.DataFrame,
    doc_keys: np.ndarray,
    fraction: float = FRACTION,
) -> pl.DataFrame:
    """Activating tokens of top examples and negative tokens of bottom examples.

    `examples` has layer, neuron, kind, doc_index, activations; `stats` layer, neuron, max, min;
    `doc_keys` is the [doc, pos] array of search keys. BOS (position 0) never counts. The
    activation is the token's fraction of the neuron's dataset extreme (max, or min for negative),
    the largest over the neuron's examples.
    """
    parts = []
    for kind, source, extreme in (("activating", "top", "max"), ("negative", "bottom", "min")):
        rows = examples.filter(pl.col("kind") == source).join(
            stats.select("layer", "neuron", extreme), on=["layer", "neuron"]
        )
        if rows.height == 0:
            continue
        acts = activation_matrix(rows["activations"])  # [rows, pos]
        ext = rows[extreme].to_numpy().astype(np.float32)[:, None]
        sign = 1.0 if kind == "activating" else -1.0
        hit = (sign * ext > 0) & (sign * acts >= sign * fraction * ext)
        hit[:, 0] = False
        r, p = np.nonzero(hit)
        docs = rows["doc_index"].to_numpy()[r]
        parts.append(
            pl.DataFrame(
                {
                    "token": doc_keys[docs, p],
                    "kind": kind,
                    "layer": rows["layer"].to_numpy()[r],
                    "neuron": rows["neuron"].to_numpy()[r],
                    "activation": (acts[r, p] / ext[r, 0]).astype(np.float32),
                }
            )
        )
    if not parts:
        return _empty()
    return pl.concat(parts).group_by(KEYS).agg(pl.col("activation").max())


def activation_matrix(lists: pl.Series) -> np.ndarray:
    """A list column of floats as a [rows, longest] float32 matrix, shorter rows padded with NaN.

    Straight from the column's buffer: going through Python lists costs ~1 s per layer. NaN never
    reaches a threshold, so padding adds no entries.

    >>> activation_matrix(pl.Series([[1.0, 2.0], [3.0]])).tolist()
    [[1.0, 2.0], [3.0, nan]]
    """
    lengths = lists.list.len().fill_null(0).to_numpy().astype(np.int64)
    width = int(lengths.max(initial=0))
    filled = lengths > 0
    flat = lists.filter(pl.Series(filled)).explode().cast(pl.Float32).to_numpy()
    if filled.all() and (lengths == width).all():
        return flat.reshape(len(lengths), width)
    out = np.full((len(lengths), width), np.nan, dtype=np.float32)
    rows = np.repeat(np.nonzero(filled)[0], lengths[filled])
    starts = np.repeat(np.cumsum(lengths[filled]) - lengths[filled], lengths[filled])
    out[rows, np.arange(len(flat)) - starts] = flat
    return out


def graph_entries(graphs: pl.DataFrame) -> pl.DataFrame:
    """Activating and important tokens of N2G graphs (their own normalised activations)."""
    return graph_tokens(graphs).group_by(KEYS).agg(pl.col("activation").max())


def graph_tokens(graphs: pl.DataFrame) -> pl.DataFrame:
    """Every activating and important token row of N2G graphs, as listed (not deduplicated)."""
    act = graphs.select(
        "layer", "neuron", token="activating_tokens", activation="activating_values"
    ).explode("token", "activation")
    imp = graphs.select("layer", "neuron", token="important_tokens").explode("token")
    return pl.concat(
        [
            act.with_columns(kind=pl.lit("activating")),
            imp.with_columns(kind=pl.lit("important"), activation=pl.lit(None, pl.Float32)),
        ],
        how="diagonal_relaxed",
    ).drop_nulls("token")


def merge_entries(examples: pl.DataFrame, graphs: pl.DataFrame) -> pl.DataFrame:
    """One row per (token, kind, neuron) with its source and the larger of the two activations."""
    schema = {"token": pl.String, "kind": pl.String, "layer": pl.Int32, "neuron": pl.Int32}
    ex = examples.cast({**schema, "activation": pl.Float32}).with_columns(_ex=pl.lit(True))
    gr = graphs.cast({**schema, "activation": pl.Float32}).with_columns(_gr=pl.lit(True))
    joined = ex.join(gr, on=KEYS, how="full", coalesce=True, suffix="_graph")
    in_ex, in_gr = pl.col("_ex").fill_null(False), pl.col("_gr").fill_null(False)
    return joined.select(
        *KEYS,
        activation=pl.max_horizontal("activation", "activation_graph"),
        source=pl.when(in_ex & in_gr)
        .then(pl.lit("both"))
        .when(in_ex)
        .then(pl.lit("examples"))
        .otherwise(pl.lit("graph")),
    )


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "token": pl.String,
            "kind": pl.String,
            "layer": pl.Int32,
            "neuron": pl.Int32,
            "activation": pl.Float32,
        }
    )
