"""A second, independent explanation score: embedding AUROC (in the spirit of EleutherAI's Delphi).

Does the explanation embed closer to the text where the neuron fires than to random text? The
explanation's sentence vector (`semantic`) is compared by cosine with text windows of the
dataset (`windows`, all-MiniLM-L6-v2, embedded once per model):

- *positives*: the window around the peak of each of the neuron's held-out top excerpts, the
  same (up to) 5 documents the correlation scores (`records.split_rows`), never an explain
  document; a document where the neuron never goes above 0 has no peak and is left out;
- *negatives*: the grid windows inside the scan's seeded uniform sample of dataset windows (the
  pool the correlation's random half is drawn from), all of them, whatever the neuron does there,
  except those of the neuron's explain and positive documents.

Score = AUROC of those cosines (0.5 chance, 1 every positive above every negative). It needs no
language model and no simulation, so it is independent of the correlation scorers and never
pooled with them (scorer ``embedding-auroc-v1``). Where it is undefined, ``score_status`` says why.
Per neuron it is a few lookups and dot products: a SmolLM2 layer takes well under a second.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from jaxtyping import Float, Int

from dd_assets.methods.explain.auroc import grouped_auroc
from dd_assets.methods.explain.protocol import SCORED, unscored
from dd_assets.methods.explain.records import TOP, SplitConfig, split_rows
from dd_assets.methods.explain.windows import WindowGrid, WindowLookup

SCORER = "embedding-auroc-v1"
NEGATIVE_SOURCE = "uniform-sample"  # negatives: grid windows of the scan's uniform sample
NO_VECTOR = unscored("the explanation has no embedding (it failed)")
NO_POSITIVES = unscored("no held-out top excerpts")
NEVER_FIRES = unscored("the neuron never fires positively on its held-out top excerpts")
NO_NEGATIVES = unscored("no random windows (the scan kept no uniform sample)")


def per_neuron(
    neuron: Int[np.ndarray, " row"], values: np.ndarray, n_neurons: int, fill
) -> np.ndarray:
    """Rows grouped by neuron into a [neuron, most rows of a neuron] array, padded with `fill`.

    >>> per_neuron(np.array([2, 0, 2]), np.array([7, 8, 9]), 3, -1).tolist()
    [[8, -1], [-1, -1], [7, 9]]
    """
    neuron = np.asarray(neuron, dtype=np.int64)
    counts = np.bincount(neuron, minlength=n_neurons)
    out = np.full((n_neurons, int(counts.max(initial=0))), fill, dtype=np.asarray(values).dtype)
    order = np.argsort(neuron, kind="stable")
    slot = np.arange(len(neuron)) - np.repeat(np.cumsum(counts) - counts, counts)
    out[neuron[order], slot] = np.asarray(values)[order]
    return out


def embedding_auroc(
    explanation: Float[np.ndarray, "neuron dim"],
    has_explanation: np.ndarray,  # bool [neuron]
    windows: Float[np.ndarray, "window dim"],
    positive: Int[np.ndarray, "neuron pos"],
    fires: np.ndarray,  # bool [neuron, pos]
    negative: Int[np.ndarray, " neg"],
    negative_excluded: np.ndarray,  # bool [neuron, neg]
) -> pl.DataFrame:
    """Per neuron: AUROC of cosine(explanation, window) on positives vs negatives, with a status.

    `positive` holds window rows (-1: none) and `fires` whether the neuron goes above 0 in that
    document; `negative` holds the window rows shared by every neuron, `negative_excluded` the
    ones a neuron must skip. Vectors are unit length (cosine = dot product).
    """
    e = np.asarray(explanation, dtype=np.float32)
    w = np.asarray(windows, dtype=np.float32)
    positive = np.asarray(positive, dtype=np.int64)
    has_row = positive >= 0
    pos_valid = has_row & np.asarray(fires, dtype=bool)
    pos_cos = np.einsum("nd,npd->np", e, w[np.where(has_row, positive, 0)])  # [neuron, pos]
    neg_cos = e @ w[np.asarray(negative, dtype=np.int64)].T  # [neuron, neg]
    neg_valid = ~np.asarray(negative_excluded, dtype=bool)
    has = np.asarray(has_explanation, dtype=bool)
    score, n_pos, n_neg = grouped_auroc(pos_cos, pos_valid, neg_cos, neg_valid)
    score[~has] = np.nan  # counts stay: the windows were there, the explanation was not

    status = np.full(len(e), SCORED, dtype=object)
    status[n_neg == 0] = NO_NEGATIVES
    status[~pos_valid.any(axis=1)] = NEVER_FIRES
    status[~has_row.any(axis=1)] = NO_POSITIVES
    status[~has] = NO_VECTOR
    return pl.DataFrame(
        {
            "neuron": np.arange(len(e), dtype=np.int32),
            "scorer": SCORER,
            "score": pl.Series(score, dtype=pl.Float64).fill_nan(None),
            "score_status": status.tolist(),
            "positives": n_pos.astype(np.int32),
            "negatives": n_neg.astype(np.int32),
            "negative_source": NEGATIVE_SOURCE,
            "mean_cosine_positive": _masked_mean(pos_cos, pos_valid & has[:, None]),
            "mean_cosine_negative": _masked_mean(neg_cos, neg_valid & has[:, None]),
        }
    )


COSINE_DECIMALS = 3
"""Mean cosines are kept to 3 decimals: the encoder's last float32 bits depend on which texts
shared its batch, and a reader needs the margin, not the noise."""


def _masked_mean(values: np.ndarray, valid: np.ndarray) -> pl.Series:
    n = valid.sum(axis=1)
    total = np.where(valid, values, 0.0).sum(axis=1, dtype=np.float64)
    means = [round(float(t / c), COSINE_DECIMALS) if c else None
             for t, c in zip(total, n, strict=True)]  # fmt: skip
    return pl.Series(means, dtype=pl.Float64)


def layer_embedding_scores(
    n_neurons: int,
    ctx: int,
    examples: dict[str, np.ndarray],
    explanation_neuron: Int[np.ndarray, " row"],
    explanation_vectors: Float[np.ndarray, "row dim"],
    window_doc: Int[np.ndarray, " window"],
    window_start: Int[np.ndarray, " window"],
    window_vectors: Float[np.ndarray, "window dim"],
    sample_spans: tuple[np.ndarray, np.ndarray, np.ndarray],
    grid: WindowGrid = WindowGrid(),
    split: SplitConfig = SplitConfig(),
) -> pl.DataFrame:
    """The embedding AUROC of every neuron of one layer.

    `examples` holds the layer's ``neuron_examples`` columns neuron, kind, rank, doc_index,
    max_activating_token_index and max_activation (documents of `ctx` tokens); the explanation
    vectors are indexed by `explanation_neuron`; the windows are the stored grid windows of the
    model; `sample_spans` are the (doc_index, start, length) of the scan's uniform sample.
    Returns one row per neuron (columns of ``embedding_scores`` without model, layer, encoder)
    plus ``positive_doc_indices``.
    """
    lookup = WindowLookup(window_doc, window_start)
    # Positives: the held-out top excerpts the correlation scores, each as its peak's window.
    rows, explain = split_rows(
        examples["neuron"], examples["kind"], examples["rank"], examples["doc_index"], split
    )
    neuron = np.asarray(examples["neuron"], dtype=np.int64)[rows]
    doc = np.asarray(examples["doc_index"], dtype=np.int64)[rows]
    top = ~explain & (np.asarray(examples["kind"], dtype=str)[rows] == TOP)
    peak = np.asarray(examples["max_activating_token_index"], dtype=np.int64)[rows[top]]
    fires = np.asarray(examples["max_activation"], dtype=np.float64)[rows[top]] > 0
    pos_window = lookup.rows(doc[top], grid.peak_starts(peak, ctx))
    positive = per_neuron(neuron[top], pos_window, n_neurons, -1)
    positive_fires = per_neuron(neuron[top], fires, n_neurons, False)

    # Negatives: every grid window of the uniform sample, less each neuron's own documents.
    s_doc, s_start, s_len = (np.asarray(a, dtype=np.int64) for a in sample_spans)
    neg_doc, neg_window = [], []
    for d, s, n in zip(s_doc.tolist(), s_start.tolist(), s_len.tolist(), strict=True):
        starts = grid.span_starts(s, n, ctx)
        neg_doc.extend([d] * len(starts))
        neg_window.extend(lookup.rows(np.full(len(starts), d), starts).tolist())
    neg_doc_arr, negative = np.asarray(neg_doc, np.int64), np.asarray(neg_window, np.int64)
    neg_doc_arr, negative = neg_doc_arr[negative >= 0], negative[negative >= 0]
    own = (explain | top) & (neuron < n_neurons)
    base = int(max(doc.max(initial=0), neg_doc_arr.max(initial=0))) + 1
    own_keys = np.unique(neuron[own] * base + doc[own])
    probe = np.arange(n_neurons)[:, None] * base + neg_doc_arr[None, :]  # [neuron, neg]
    excluded = np.isin(probe, own_keys)

    vectors = np.zeros((n_neurons, np.asarray(window_vectors).shape[1]), dtype=np.float32)
    has = np.zeros(n_neurons, dtype=bool)
    e_neuron = np.asarray(explanation_neuron, dtype=np.int64)
    vectors[e_neuron] = explanation_vectors
    has[e_neuron] = True
    out = embedding_auroc(vectors, has, window_vectors, positive, positive_fires, negative,
                          excluded)  # fmt: skip
    positive_docs = per_neuron(neuron[top], doc[top], n_neurons, -1)
    used = (positive >= 0) & positive_fires
    return out.with_columns(
        pl.Series(
            "positive_doc_indices",
            [r[u].tolist() for r, u in zip(positive_docs, used, strict=True)],
            dtype=pl.List(pl.Int64),
        )
    )
