"""Coarse token classes and the offline fallback simulator built on them.

When none of a neuron's explanation tokens occurs in its held-out excerpts, the token-lookup
simulator predicts 0 everywhere and the correlation is undefined. A better-defined prediction
that still uses only the explain split: the neuron's mean scaled (0-10) activation on each class
of token (whitespace, digits, punctuation, words with or without a leading space), applied to the
held-out tokens. It is a weak baseline, and is stored under its own scorer name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Float, Int

from dd_assets.methods.explain.records import Excerpts, scaled_rows

CLASSES = ("whitespace", "digits", "punctuation", "word", "word-piece", "other")
"""Class names by index: a token's class is the first that fits (``other``: empty or mixed)."""


def token_class(token: str) -> int:
    """The class index of one token string.

    >>> [CLASSES[token_class(t)] for t in ["\\n", " 42", ")", " def", "ing", ""]]
    ['whitespace', 'digits', 'punctuation', 'word', 'word-piece', 'other']
    """
    stripped = token.strip()
    if token and not stripped:
        return 0
    if stripped.isdigit():
        return 1
    if stripped and all(not c.isalnum() for c in stripped):
        return 2
    if stripped.isalpha() or stripped.replace("_", "").isalnum():
        return 3 if token[0].isspace() else 4
    return 5


def token_classes(vocab: Sequence[str], size: int | None = None) -> Int[np.ndarray, " d_vocab"]:
    """Class index per token id (ids past the vocabulary, up to `size`, are ``other``)."""
    size = max(len(vocab), size or 0)
    out = np.full(size, CLASSES.index("other"), dtype=np.int64)
    out[: len(vocab)] = [token_class(t) for t in vocab]
    return out


def class_mean_prediction(
    excerpts: Excerpts, scale: Float[np.ndarray, " neuron"], classes: Int[np.ndarray, " d_vocab"]
) -> Float[np.ndarray, "row pos"]:
    """Predicted activation of every score-split token: the neuron's mean scaled activation on
    the explain split over tokens of the same class (its overall mean if the class never occurs
    there). Rows are those of ``excerpts.take(~excerpts.explain)``."""
    n_neurons, n_classes = len(scale), len(CLASSES)
    ex = excerpts.take(excerpts.explain)
    scaled = scaled_rows(ex.activations, scale[ex.neuron])
    cell = np.repeat(ex.neuron, ex.width) * n_classes + classes[ex.token_ids.ravel()]
    total = np.bincount(cell, scaled.ravel(), n_neurons * n_classes).reshape(n_neurons, -1)
    count = np.bincount(cell, minlength=n_neurons * n_classes).reshape(n_neurons, -1)
    overall = total.sum(axis=1) / np.maximum(count.sum(axis=1), 1)
    means = np.where(count > 0, total / np.maximum(count, 1), overall[:, None])
    sc = excerpts.take(~excerpts.explain)
    return means[sc.neuron[:, None], classes[sc.token_ids]]
