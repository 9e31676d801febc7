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
