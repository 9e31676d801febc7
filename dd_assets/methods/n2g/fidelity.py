"""How well a graph predicts its neuron: firing-class precision, recall and F1 on held-out text.

Activations are normalised by the neuron's dataset maximum; a token "fires" when its normalised
activation is at least `fire_threshold` (0.5). Counts are pooled over all tokens of all test
texts of a neuron; layer means average the per-neuron scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dd_assets.methods.n2g.tokens import norm_token


@dataclass(frozen=True)
class Fidelity:
    precision: float | None  # None when nothing was predicted to fire and nothing fired
    recall: float
    f1: float
    tokens: int
    firing: int

    def as_dict(self) -> dict:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tokens": self.tokens,
            "firing": self.firing,
        }


def firing_scores(real: np.ndarray, predicted: np.ndarray, threshold: float = 0.5) -> Fidelity:
    """Precision/recall/F1 of the firing class, with N2G's edge cases.

    No true positives: precision is undefined (None) if nothing was predicted to fire, else 0;
    recall is 1 if nothing fired (nothing was missed), else 0; F1 is 0.
    """
    fires, said = real >= threshold, predicted >= threshold
    tp = int(np.sum(fires & said))
    fp = int(np.sum(~fires & said))
    fn = int(np.sum(fires & ~said))
    if tp == 0:
        precision = None if fp == 0 else 0.0
        recall = 1.0 if fn == 0 else 0.0
        f1 = 0.0
    else:
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2 * precision * recall / (precision + recall)
    return Fidelity(precision, recall, f1, int(real.size), int(fires.sum()))


class TokenLookup:
    """The paper's baseline: each token predicts the max normalised activation it had in training."""

    def __init__(self, normalize: bool = True) -> None:
        self.normalize = normalize
        self.table: dict[str, float] = {}

    def fit(self, texts: Sequence[tuple[Sequence[str], np.ndarray, np.ndarray]]) -> TokenLookup:
        """`texts`: (tokens, normalised activations, valid-position mask) per training text."""
        for tokens, acts, valid in texts:
            for tok, act, ok in zip(tokens, acts.tolist(), valid.tolist(), strict=True):
                if ok:
                    key = norm_token(tok, self.normalize)
                    if act > self.table.get(key, float("-inf")):
                        self.table[key] = act
        return self

    def predict(self, tokens: Sequence[str]) -> np.ndarray:
        get = self.table.get
        return np.asarray(
            [get(norm_token(t, self.normalize), 0.0) for t in tokens], dtype=np.float32
        )
