"""The scoring protocol: pooled, top-only and random-only correlations, and why a score is missing.

OpenAI's Neuron Explainer scores an explanation on held-out excerpts: 5 top-activating ones and 5
drawn uniformly from the dataset ("top-and-random"); the headline score is the correlation of
simulated and true activations pooled over all their tokens, and the same computation on the top
or the random excerpts alone gives the "top-only" and "random-only" scores (methods.md §3.6).

A correlation is undefined when either side is constant. Rather than a silent null, every neuron
gets a `score_status` saying why it has no score, so a reader (and a summary) can count and
explain the unscored ones instead of dropping them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int

from dd_assets.methods.explain.records import RANDOM, UNIFORM
from dd_assets.methods.explain.scoring import EPS, grouped_correlation

SCORED = "scored"
FALLBACK = "scored by fallback"
NO_EXCERPTS = "unscored: no held-out excerpts"
CONSTANT_TRUE = "unscored: the neuron's activations are constant on the held-out excerpts"
NEVER_FIRES = "unscored: the neuron never fires positively on its top examples"


RANDOM_SOURCES = {RANDOM: "quantile-bands", UNIFORM: "uniform-sample"}
"""`random_source` by excerpt kind: where the random half of a score set came from."""


def unscored(reason: str) -> str:
    """The status of a row without a score, e.g. ``unscored: simulation is constant``."""
    return f"unscored: {reason}"


@dataclass(frozen=True)
class ProtocolScores:
    """Per neuron (indexed by neuron): the three correlations (NaN where undefined) and a status."""

    pooled: Float[np.ndarray, " neuron"]
    top: Float[np.ndarray, " neuron"]
    random: Float[np.ndarray, " neuron"]
    status: np.ndarray  # object [neuron]
    constant_prediction: Bool[np.ndarray, " neuron"]
    """The prediction is constant while the true activations vary: a simulator problem that a
    better-defined fallback simulator may fix."""

    def value(self, which: str, neuron: int) -> float | None:
        v = float(getattr(self, which)[neuron])
        return None if np.isnan(v) else v


def _varies(group: np.ndarray, x: np.ndarray, n_groups: int) -> np.ndarray:
    n = np.maximum(np.bincount(group, minlength=n_groups), 1)
    dx = x - (np.bincount(group, x, n_groups) / n)[group]
    sxx = np.bincount(group, dx * dx, n_groups)
    return sxx > EPS * np.maximum(np.bincount(group, x * x, n_groups), 1e-300)


def protocol_scores(
    neuron: Int[np.ndarray, " token"],
    is_random: Bool[np.ndarray, " token"],
    true: Float[np.ndarray, " token"],
    predicted: Float[np.ndarray, " token"],
    n_neurons: int,
    constant_reason: str = "the simulation is constant on the held-out excerpts",
) -> ProtocolScores:
    """Score every neuron at once from its scored tokens (top and random excerpts together).

    `constant_reason` names why a simulator predicts a constant (the caller knows: an offline
    token list that never occurs, an LLM that predicts 0 everywhere).
    """
    neuron = np.asarray(neuron, dtype=np.int64)
    is_random = np.asarray(is_random, dtype=bool)
    x = np.asarray(true, dtype=np.float64)
    y = np.asarray(predicted, dtype=np.float64)
    if not neuron.shape == is_random.shape == x.shape == y.shape:
        raise ValueError("neuron, is_random, true and predicted need one value per scored token")
    pooled = grouped_correlation(neuron, x, y, n_neurons)
    top = grouped_correlation(neuron[~is_random], x[~is_random], y[~is_random], n_neurons)
    rand = grouped_correlation(neuron[is_random], x[is_random], y[is_random], n_neurons)
    count = np.bincount(neuron, minlength=n_neurons)
    true_varies = _varies(neuron, x, n_neurons)
    pred_varies = _varies(neuron, y, n_neurons)
    status = np.full(n_neurons, SCORED, dtype=object)
    constant = (count >= 2) & true_varies & ~pred_varies
    status[constant] = unscored(constant_reason)
    status[(count >= 2) & ~true_varies] = CONSTANT_TRUE
    status[count < 2] = NO_EXCERPTS
    return ProtocolScores(pooled, top, rand, status, constant)
