"""AUROC: how well a similarity separates positives from negatives, for many neurons at once.

The area under the ROC curve equals the probability that a random positive scores above a random
negative, ties counting half (the Mann-Whitney U statistic over all positive-negative pairs).
0.5 is chance, 1 a perfect separation, 0 a perfect inversion. It is undefined without at least
one positive and one negative. Each neuron has a handful of positives and under a hundred
negatives, so all pairs are compared directly.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float, Int


def grouped_auroc(
    positive: Float[np.ndarray, "neuron pos"],
    positive_valid: Bool[np.ndarray, "neuron pos"],
    negative: Float[np.ndarray, "neuron neg"],
    negative_valid: Bool[np.ndarray, "neuron neg"],
) -> tuple[Float[np.ndarray, " neuron"], Int[np.ndarray, " neuron"], Int[np.ndarray, " neuron"]]:
    """Per neuron (row): AUROC of its valid positives against its valid negatives, NaN where
    either set is empty; and the numbers of positives and negatives it used."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    pv = np.asarray(positive_valid, dtype=bool)
    nv = np.asarray(negative_valid, dtype=bool)
    if pos.shape != pv.shape or neg.shape != nv.shape or pos.shape[0] != neg.shape[0]:
        raise ValueError(f"shapes differ: positives {pos.shape}/{pv.shape}, "
                         f"negatives {neg.shape}/{nv.shape}")  # fmt: skip
    a, b = pos[:, :, None], neg[:, None, :]  # [neuron, pos, neg]
    pairs = pv[:, :, None] & nv[:, None, :]
    wins = ((a > b) + 0.5 * (a == b)) * pairs
    n_pos, n_neg = pv.sum(axis=1), nv.sum(axis=1)
    total = n_pos * n_neg
    out = np.full(len(pos), np.nan)
    defined = total > 0
    out[defined] = wins.sum(axis=(1, 2))[defined] / total[defined]
    return out, n_pos, n_neg


def auroc(positive, negative) -> float | None:
    """AUROC of one set of positive and negative scores; None if either is empty.

    >>> auroc([0.9, 0.8], [0.1, 0.8])
    0.875
    >>> auroc([0.3], []) is None
    True
    """
    pos = np.asarray(positive, dtype=np.float64).reshape(1, -1)
    neg = np.asarray(negative, dtype=np.float64).reshape(1, -1)
    out, _, _ = grouped_auroc(pos, np.ones(pos.shape, bool), neg, np.ones(neg.shape, bool))
    return None if np.isnan(out[0]) else float(out[0])
