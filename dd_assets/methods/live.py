"""Activations on user text: several texts of different lengths through one forward pass.

The inference service (``dd_infer``) batches concurrent requests through `run_queries`. It reads
activations with the scan's `LayerActivations` (same hook, same fast path) and rounds them like
the stored Neuroscope activations (`round_served`), so a stored document's text gives back the
served numbers. Texts are right-padded to the longest one: the models are causal, so tokens after
a text do not change the activations at its positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int

from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.neuroscope import SERVED_DECIMALS


@dataclass(frozen=True)
class TraceQuery:
    """One neuron's activation at every token of a text (BOS first)."""

    ids: list[int]
    layer: int
    neuron: int

    @property
    def layers(self) -> tuple[int, ...]:
        return (self.layer,)


@dataclass(frozen=True)
class PeakQuery:
    """Every neuron's largest activation over a text (BOS excluded) in some layers."""

    ids: list[int]
    layers: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ids) < 2:
            raise ValueError("a peak needs at least one token after BOS")


@dataclass(frozen=True)
class Peaks:
    layers: tuple[int, ...]
    values: Float[np.ndarray, "layer d_mlp"]  # rounded like the served activations
    token_index: Int[np.ndarray, "layer d_mlp"]  # position of the peak (1 = first after BOS)


def _round(acts: torch.Tensor) -> torch.Tensor:
    """`round_served` on a tensor: 6 decimals in float64, then float32."""
    return acts.double().round(decimals=SERVED_DECIMALS).float()


def pad_batch(id_lists: Sequence[list[int]], pad_id: int) -> Int[torch.Tensor, "batch pos"]:
    """Right-pad token id lists into one tensor."""
    width = max(len(ids) for ids in id_lists)
    tokens = torch.full((len(id_lists), width), pad_id, dtype=torch.long)
    for row, ids in enumerate(id_lists):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return tokens


def run_queries(
    bridge, hook: str, queries: Sequence[TraceQuery | PeakQuery], pad_id: int
) -> list[Float[np.ndarray, " pos"] | Peaks]:
    """Answer every query from one forward pass that stops after the deepest layer any needs."""
    layers = sorted({layer for q in queries for layer in q.layers})
    slot = {layer: i for i, layer in enumerate(layers)}
    tokens = pad_batch([q.ids for q in queries], pad_id)
    tokens = tokens.to(next(bridge.parameters()).device)
    acts = LayerActivations(bridge, layers, hook)(tokens)  # per layer [batch, pos, d_mlp]
    out: list[np.ndarray | Peaks] = []
    for row, q in enumerate(queries):
        n = len(q.ids)
        if isinstance(q, TraceQuery):
            trace = _round(acts[slot[q.layer]][row, :n, q.neuron])  # [pos]
            out.append(trace.cpu().numpy())
            continue
        body = torch.stack([_round(acts[slot[layer]][row, 1:n]) for layer in q.layers])
        values, index = body.max(dim=1)  # [layer, d_mlp]: over positions after BOS
        out.append(Peaks(q.layers, values.cpu().numpy(), (index + 1).cpu().numpy()))
    return out
