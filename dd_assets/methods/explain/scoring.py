"""Scoring a simulation: the correlation between simulated and true activations (methods.md §3.6).

The headline score is ``ev_correlation_score``: the Pearson correlation between the true (raw)
activations and the simulated 0-10 values, pooled over every token of every scored excerpt (not an
average of per-excerpt correlations). It is undefined (None) when either side is constant, e.g. a
simulator that predicts 0 everywhere. Correlation ignores any affine rescaling of the prediction,
so the 0-10 simulation needs no calibration against raw activations.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int

EPS = 1e-12


def correlation(true, predicted) -> float | None:
    """Pearson correlation of two equally long sequences; None if either is constant or empty.

    >>> round(correlation([0.0, 1.0, 2.0], [0, 5, 10]), 6)
    1.0
    >>> correlation([0.0, 1.0, 2.0], [3, 3, 3]) is None
    True
    """
    x = np.asarray(true, dtype=np.float64).ravel()
    y = np.asarray(predicted, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"true has {x.size} values but predicted has {y.size}")
    scores = grouped_correlation(np.zeros(x.size, dtype=np.int64), x, y, 1)
    return None if np.isnan(scores[0]) else float(scores[0])


def pooled_score(true_records: list, predicted_records: list) -> float | None:
    """ev_correlation_score of several excerpts: one correlation over their concatenated tokens."""
    if len(true_records) != len(predicted_records):
        raise ValueError("need one prediction per scored excerpt")
    if not true_records:
        return None
    return correlation(
        np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in true_records]),
        np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in predicted_records]),
    )


def grouped_correlation(
    group: Int[np.ndarray, " token"],
    true: Float[np.ndarray, " token"],
    predicted: Float[np.ndarray, " token"],
    n_groups: int,
) -> Float[np.ndarray, " group"]:
    """Pooled Pearson correlation per group (e.g. per neuron) in one vectorised pass; NaN where
    undefined. Two passes (means, then centred sums) keep it accurate for large offsets."""
    group = np.asarray(group, dtype=np.int64)
    x = np.asarray(true, dtype=np.float64)
    y = np.asarray(predicted, dtype=np.float64)
    n = np.bincount(group, minlength=n_groups).astype(np.float64)
    safe_n = np.maximum(n, 1)
    dx = x - (np.bincount(group, x, n_groups) / safe_n)[group]
    dy = y - (np.bincount(group, y, n_groups) / safe_n)[group]
    sxy = np.bincount(group, dx * dy, n_groups)
    sxx = np.bincount(group, dx * dx, n_groups)
    syy = np.bincount(group, dy * dy, n_groups)
    # "Constant" relative to the values' own size: float noise must not make a constant vary.
    scale_x = np.bincount(group, x * x, n_groups)
    scale_y = np.bincount(group, y * y, n_groups)
    defined = (
        (n >= 2)
        & (sxx > EPS * np.maximum(scale_x, 1e-300))
        & (syy > EPS * np.maximum(scale_y, 1e-300))
    )
    out = np.full(n_groups, np.nan)
    out[defined] = sxy[defined] / np.sqrt(sxx[defined] * syy[defined])
    return np.clip(out, -1.0, 1.0)
