"""Similar neurons from the tokens of their graphs, across all layers of a model.

Each neuron has a set A of activating tokens and a set I of important context tokens. The pooled
overlap coefficient

    sim(x, y) = (|A_x ∩ A_y| + |I_x ∩ I_y|) / (min(|A_x|, |A_y|) + min(|I_x|, |I_y|))

is computed for every pair with a shared token, from sparse neuron × token matrices multiplied in
row blocks, so memory stays proportional to the number of overlapping pairs, never N × N.

``compat=True`` reproduces the values DeepDecipher served, whose denominator used only the sizes of
the later neuron of the pair (in layer-major order): (|A_x ∩ A_y| + |I_x ∩ I_y|) / (|A_y| + |I_y|).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Pairs:
    """Ordered pairs (both directions) with similarity at or above the threshold."""

    source: np.ndarray  # int64 row index into the input lists
    target: np.ndarray
    similarity: np.ndarray  # float32


def _matrix(sets: Sequence[set[str]], vocab: dict[str, int]) -> sp.csr_matrix:
    rows, cols = [], []
    for r, tokens in enumerate(sets):
        for t in tokens:
            rows.append(r)
            cols.append(vocab.setdefault(t, len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(sets), max(len(vocab), 1)))


def similar_pairs(
    activating: Sequence[set[str]],
    important: Sequence[set[str]],
    threshold: float = 0.4,
    compat: bool = False,
    block: int = 2048,
) -> Pairs:
    """All pairs (x, y), x != y, with sim(x, y) >= threshold; rows are in layer-major order."""
    n = len(activating)
    vocab: dict[str, int] = {}
    xa = _matrix(activating, vocab)
    xi = _matrix(important, vocab)
    xa.resize((n, len(vocab) or 1))
    xi.resize((n, len(vocab) or 1))
    size_a = np.asarray([len(s) for s in activating], dtype=np.float32)
    size_i = np.asarray([len(s) for s in important], dtype=np.float32)
    xa_t, xi_t = xa.T.tocsr(), xi.T.tocsr()
    out_s, out_t, out_v = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        shared = (xa[start:stop] @ xa_t + xi[start:stop] @ xi_t).tocoo()
        src = shared.row.astype(np.int64) + start
        dst = shared.col.astype(np.int64)
        keep = src != dst
        src, dst, common = src[keep], dst[keep], shared.data[keep]
        if compat:
            later = np.maximum(src, dst)
            denom = size_a[later] + size_i[later]
        else:
            denom = np.minimum(size_a[src], size_a[dst]) + np.minimum(size_i[src], size_i[dst])
        with np.errstate(divide="ignore", invalid="ignore"):
            sim = np.where(denom > 0, common / denom, np.nan)
        keep = sim >= threshold  # NaN compares False: empty denominators are dropped
        out_s.append(src[keep])
        out_t.append(dst[keep])
        out_v.append(sim[keep].astype(np.float32))
    if not out_s:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty, np.zeros(0, dtype=np.float32))
    return Pairs(np.concatenate(out_s), np.concatenate(out_t), np.concatenate(out_v))
