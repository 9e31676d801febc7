"""One neuron's activation on many short sequences, batched into a few large forward passes.

N2G asks for thousands of small things (pruning candidates, one masked copy per token, augmented
prompts) for many neurons at once. `NeuronProbe` takes them all, sorts by length so padding is
small, packs them into batches of about `max_batch_tokens`, stops each forward pass at the
neuron's layer, and reads back only the requested neuron of each row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dd_assets.methods.activations import LayerActivations

ActsFn = Callable[[Sequence[np.ndarray], np.ndarray], list[np.ndarray]]
"""(token id sequences, neuron index per sequence) -> activation per position of each sequence."""


@dataclass
class ProbeStats:
    sequences: int = 0
    tokens: int = 0  # real (unpadded) tokens
    padded_tokens: int = 0
    forward_passes: int = 0
    seconds: float = 0.0


class NeuronProbe:
    """An `ActsFn` over one layer of a TransformerBridge (right-padded, causal: pads never leak)."""

    def __init__(
        self,
        bridge,
        layer: int,
        hook: str = "mlp.hook_post",
        pad_id: int = 0,
        max_batch_tokens: int = 8192,
    ) -> None:
        self.reader = LayerActivations(bridge, [layer], hook)
        self.device = next(bridge.parameters()).device
        self.pad_id = pad_id
        self.max_batch_tokens = max_batch_tokens
        self.stats = ProbeStats()

    def __call__(self, seqs: Sequence[np.ndarray], neurons: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(seqs)
        lengths = np.asarray([len(s) for s in seqs])
        order = np.argsort(-lengths, kind="stable")
        start = time.perf_counter()
        i = 0
        while i < len(order):
            width = int(lengths[order[i]])
            rows = max(1, self.max_batch_tokens // max(width, 1))
            chunk = order[i : i + rows]
            batch = np.full((len(chunk), width), self.pad_id, dtype=np.int64)
            for r, idx in enumerate(chunk):
                batch[r, : lengths[idx]] = seqs[idx]
            tokens = torch.from_numpy(batch).to(self.device)
            (acts,) = self.reader(tokens)  # [rows, width, d_mlp]
            picked = acts[torch.arange(len(chunk)), :, torch.as_tensor(neurons[chunk])]
            picked = picked.cpu().numpy()
            for r, idx in enumerate(chunk):
                out[idx] = picked[r, : lengths[idx]]
            self.stats.forward_passes += 1
            self.stats.padded_tokens += batch.size
            self.stats.tokens += int(lengths[chunk].sum())
            i += len(chunk)
        self.stats.sequences += len(seqs)
        self.stats.seconds += time.perf_counter() - start
        return out  # type: ignore[return-value]
