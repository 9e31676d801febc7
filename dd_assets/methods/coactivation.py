"""Similar neurons by co-activation: Pearson correlation over a shared sample of token positions.

Every neuron of every layer is a column of one [positions, neurons] matrix. Correlations are
computed a block of neurons at a time (block x neurons, never neurons x neurons), so memory is
O(positions x neurons + block x neurons) whatever the model's size. For each neuron the k others
with the largest |correlation| are kept with their sign: strong anti-correlation is as telling as
co-activation. A neuron constant on the sample has no defined correlation: it gets no similar
neurons and appears in nobody's list.
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


def standardize(x: Float[np.ndarray, "pos neuron"]) -> tuple[torch.Tensor, np.ndarray]:
    """Columns centred and scaled so that z.T @ z is the correlation matrix; mask of live columns."""
    x64 = torch.from_numpy(np.asarray(x, dtype=np.float64))
    centred = x64 - x64.mean(0)
    norm = centred.norm(dim=0)  # [neuron]
    live = norm > 1e-9 * max(float(norm.max()) if norm.numel() else 0.0, 1.0)
    z = torch.where(live, centred / norm.clamp_min(1e-300), torch.zeros_like(centred))
    return z.float(), live.numpy()


@torch.inference_mode()
def top_correlations(
    x: Float[np.ndarray, "pos neuron"],
    k: int = 10,
    block: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> Similar:
    """The k most (anti-)correlated other columns of every column of `x`, computed in blocks."""
    n = x.shape[1]
    z, live = standardize(x)
    k_eff = min(k, max(n - 1, 0))
    index = np.full((n, k), -1, dtype=np.int64)
    corr = np.full((n, k), np.nan, dtype=np.float32)
    dead = torch.from_numpy(~live)
    for start in range(0, n, block):
        stop = min(start + block, n)
        c = z[:, start:stop].T @ z  # [block, neuron]
        strength = c.abs()
        strength[:, dead] = -1.0  # dead partners never rank
        rows = torch.arange(stop - start)
        strength[rows, rows + start] = -2.0  # nor does the neuron itself
        _, idx = strength.topk(k_eff, dim=1)
        vals = c.gather(1, idx)
        ok = live[start:stop]
        index[start:stop, :k_eff] = np.where(ok[:, None], idx.numpy(), -1)
        corr[start:stop, :k_eff] = np.where(ok[:, None], vals.numpy(), np.nan)
        if progress is not None:
            progress(stop, n)
    # A live neuron whose only remaining partners are dead got them at strength -1: drop those.
    partner_dead = (index >= 0) & ~live[np.clip(index, 0, None)]
    index[partner_dead], corr[partner_dead] = -1, np.nan
    return Similar(index, corr)
