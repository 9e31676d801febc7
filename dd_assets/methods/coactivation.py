"""Similar neurons by co-activation: Pearson correlation over a shared sample of token positions.

Every neuron of every layer is a column of one [positions, neurons] matrix. Correlations are
computed a pair of neuron blocks at a time (block x block, never neurons x neurons), each pair once
since the matrix is symmetric, and every row keeps a running top k, so memory is
O(positions x neurons + block x block + neurons x k) whatever the model's size. For each neuron the
k others with the largest |correlation| are kept with their sign: strong anti-correlation is as
telling as co-activation. A neuron constant on the sample has no defined correlation: it gets no
similar neurons and appears in nobody's list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float

METHOD = "pearson-activation-sample"


@dataclass(frozen=True)
class Similar:
    """Per neuron (rows, in column order of the input): k partners, strongest |correlation| first."""

    index: np.ndarray  # [neuron, k] int64 column of the partner; -1 where undefined
    correlation: np.ndarray  # [neuron, k] float32; nan where undefined


def standardize(
    x: Float[np.ndarray, "pos neuron"], chunk: int = 4096
) -> tuple[torch.Tensor, np.ndarray]:
    """Columns centred and scaled so that z.T @ z is the correlation matrix; mask of live columns.

    Centring and norms are computed in float64 (activations with a large offset lose their
    variance in float32), `chunk` columns at a time: a float64 copy of the whole sample would
    be 2 x its float32 size (SmolLM2's 2,048 x 46,080 sample: 755 MB per copy).
    """
    x = np.asarray(x)
    n = x.shape[1]
    z = torch.zeros(x.shape, dtype=torch.float32)
    norm = np.zeros(n, dtype=np.float64)
    for start in range(0, n, chunk):
        part = torch.from_numpy(np.asarray(x[:, start : start + chunk], dtype=np.float64))
        centred = part - part.mean(0)
        col_norm = centred.norm(dim=0)
        norm[start : start + chunk] = col_norm.numpy()
        z[:, start : start + chunk] = (centred / col_norm.clamp_min(1e-300)).float()
    live = norm > 1e-9 * max(float(norm.max()) if n else 0.0, 1.0)
    z[:, torch.from_numpy(~live)] = 0.0
    return z, live


@torch.inference_mode()
def top_correlations(
    x: Float[np.ndarray, "pos neuron"],
    k: int = 10,
    block: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> Similar:
    """The k most (anti-)correlated other columns of every column of `x`, computed in blocks.

    The correlation matrix is symmetric, so each pair of column blocks is multiplied once
    (block i against blocks j >= i) and the product serves block i's rows and, transposed,
    block j's rows: half the FLOPs of a full row sweep. `progress(done, total)` counts block pairs.
    """
    n = x.shape[1]
    z, live = standardize(x)
    k_eff = min(k, max(n - 1, 0))
    bounds = [(lo, min(lo + block, n)) for lo in range(0, n, block)]
    dead = [torch.from_numpy(np.flatnonzero(~live[lo:hi])) for lo, hi in bounds]
    tops = [_RunningTop.empty(hi - lo, k_eff) for lo, hi in bounds]
    pairs, done = len(bounds) * (len(bounds) + 1) // 2, 0
    for i, (lo_i, hi_i) in enumerate(bounds):
        for j in range(i, len(bounds)):
            lo_j, hi_j = bounds[j]
            c = z[:, lo_i:hi_i].T @ z[:, lo_j:hi_j]  # [block i, block j]
            strength = c.abs()
            strength[dead[i]] = -1.0  # dead neurons neither rank nor get partners
            strength[:, dead[j]] = -1.0
            if i == j:
                strength.fill_diagonal_(-1.0)  # nor does a neuron partner itself
            tops[i].offer(c, strength, lo_j)
            if i != j:
                tops[j].offer(c.T, strength.T.contiguous(), lo_i)
            done += 1
            if progress is not None:
                progress(done, pairs)
    index = np.full((n, k), -1, dtype=np.int64)
    corr = np.full((n, k), np.nan, dtype=np.float32)
    for (lo, hi), top in zip(bounds, tops, strict=True):
        ok = (top.strength >= 0).numpy() & live[lo:hi, None]  # -1: no live partner found
        index[lo:hi, :k_eff] = np.where(ok, top.index.numpy(), -1)
        corr[lo:hi, :k_eff] = np.where(ok, top.value.numpy(), np.nan)
    return Similar(index, corr)


@dataclass
class _RunningTop:
    """The k strongest partners seen so far by each row of one block (strength -1: none yet)."""

    strength: torch.Tensor  # [rows, k] float32 |correlation|
    index: torch.Tensor  # [rows, k] int64 column of the partner
    value: torch.Tensor  # [rows, k] float32 signed correlation

    @classmethod
    def empty(cls, rows: int, k: int) -> _RunningTop:
        return cls(
            torch.full((rows, k), -1.0),
            torch.full((rows, k), -1, dtype=torch.int64),
            torch.full((rows, k), float("nan")),
        )

    def offer(self, c: torch.Tensor, strength: torch.Tensor, offset: int) -> None:
        """Merge the candidates of one block of columns (starting at column `offset`)."""
        k = self.index.shape[1]
        s, idx = strength.topk(min(k, c.shape[1]), dim=1)
        s = torch.cat((self.strength, s), dim=1)
        idx = torch.cat((self.index, idx + offset), dim=1)
        v = torch.cat((self.value, c.gather(1, idx[:, k:] - offset)), dim=1)
        s, keep = s.topk(k, dim=1)
        self.strength, self.index, self.value = s, idx.gather(1, keep), v.gather(1, keep)
