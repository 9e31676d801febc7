"""Explanation vectors kept as sums of shared parts, so that a query's cosine with all 46k costs
one small product.

The pipeline defines an explanation's vector (`dd_assets.methods.explain.semantic`): a top-tokens
explanation is the normalised mean of its firing tokens' description vectors, which come from a
model's ~5,500 distinct dataset tokens (`token_description_vectors`); any other explanation has its
own vector (`explanation_embeddings`). So the cosine of a query q with row r is

    q . normalise(mean_u v_u) = (sum_u q . v_u) / (count_r * ||mean_u v_u||)

and all rows' cosines are one [units x dim] product plus a `bincount`: about 30x less memory
traffic than the [46,080 x 384] product with the stored vectors, which held the query path above
20 ms on two cores. Stored and decomposed vectors agree to float32 rounding (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse

from dd_assets.methods.explain.semantic import explanation_units

CHUNK = 8192


@dataclass(frozen=True)
class ExplanationVectors:
    """Rows' vectors as sums of `units`: row r = scale[r] * sum of units[u] over parts[r, u]."""

    units: np.ndarray  # float32 [unit, dim]
    parts: sparse.csr_array  # [row, unit]: how often a unit is part of the row
    scale: np.ndarray  # float64 [row]: 1 / (count * ||mean||); 0 where a row has no vector
    encoder: str

    def cosine(self, query: np.ndarray) -> np.ndarray:
        """Every row's cosine similarity with the unit vector `query` (0 where no vector)."""
        if not self.units.size:
            return np.zeros(len(self.scale))
        return (self.parts @ (self.units @ query).astype(np.float64)) * self.scale

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The unit vectors of some rows, as the pipeline stored them (for tests and checks)."""
        return (self.parts[rows] @ self.units.astype(np.float64)) * self.scale[rows, None]

    @classmethod
    def build(
        cls,
        kinds: list[str],
        explanations: list[str],
        descriptions: pl.DataFrame,
        stored: Callable[[list[int]], dict[int, np.ndarray]],
        encoder: str,
    ) -> ExplanationVectors:
        """`descriptions` (description, embedding): the model's token description vectors;
        `stored(rows)`: the stored vectors of the rows whose parts are not all descriptions
        (LLM prose), row -> vector; a row it has none for gets no vector."""
        known = {d: i for i, d in enumerate(descriptions["description"].to_list())}
        vectors = list(descriptions["embedding"].to_numpy()) if descriptions.height else []
        entry_row: list[int] = []
        entry_unit: list[int] = []
        whole: list[int] = []
        for r, (kind, text) in enumerate(zip(kinds, explanations, strict=True)):
            ids = [known.get(p) for p in explanation_units(kind, text)]
            if ids and all(i is not None for i in ids):
                entry_row.extend([r] * len(ids))
                entry_unit.extend(ids)  # type: ignore[arg-type]
            else:
                whole.append(r)
        for r, vector in sorted(stored(whole).items()) if whole else ():
            entry_row.append(r)
            entry_unit.append(len(vectors))
            vectors.append(vector)
        dim = len(vectors[0]) if vectors else 0
        units = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), dim)
        parts = sparse.csr_array(
            (np.ones(len(entry_row)), (entry_row, entry_unit)), shape=(len(kinds), len(units))
        )  # repeated (row, unit) pairs add up, as a repeated part counts twice in the mean
        # Norms of the rows' sums, a chunk of rows at a time (no [row, dim] temporary).
        norms = np.concatenate(
            [
                np.linalg.norm(parts[a : a + CHUNK] @ units.astype(np.float64), axis=1)
                for a in range(0, len(kinds), CHUNK)
            ]
            or [np.zeros(0)]
        )
        scale = np.divide(1.0, norms, out=np.zeros(len(kinds)), where=norms > 1e-12)
        return cls(units, parts, scale, encoder)
