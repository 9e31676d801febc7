"""One neuron's activation on many short sequences, batched into a few large forward passes.

N2G asks for thousands of small things (pruning candidates, one masked copy per token, augmented
prompts) for many neurons at once. `NeuronProbe` takes them all, sorts by length so padding is
small, packs them into batches of about `max_batch_tokens`, stops each forward pass at the
neuron's layer, and reads back only the requested neuron of each row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.n2g.masked_copies import Copies, SharedPrefix, masked_copies

log = logging.getLogger(__name__)


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
        share_prefixes: bool = True,
    ) -> None:
        self.reader = LayerActivations(bridge, [layer], hook)
        self.device = next(bridge.parameters()).device
        self.pad_id = pad_id
        self.max_batch_tokens = max_batch_tokens
        self.stats = ProbeStats()
        model = getattr(bridge, "original_model", None)
        self._shared: SharedPrefix | None = None
        if share_prefixes and self.reader.uses_fast_path and SharedPrefix.supported(model):
            self._shared = SharedPrefix(self.reader, model, pad_id, max_batch_tokens)
        self._shared_checked = False

    @property
    def shares_prefixes(self) -> bool:
        return self._shared is not None

    def masked_copies(
        self, seqs: Sequence[np.ndarray], neurons: np.ndarray, mask_id: int
    ) -> Copies:
        """Each sequence's activations and those of its copies with one position masked (N2G
        saliency), sharing each original's prefix where the model allows it.

        Before trusting the shared-prefix path on a model, the first call compares it with
        running the copies whole on up to two sequences and falls back if they disagree.
        """
        if self._shared is None:
            return masked_copies(self, seqs, neurons, mask_id)
        if not self._shared_checked:
            self._shared_checked = True
            probe = [i for i, s in enumerate(seqs) if len(s) >= 3][:2]
            if probe and not _agree(
                self._timed_shared([seqs[i] for i in probe], neurons[probe], mask_id),
                masked_copies(self, [seqs[i] for i in probe], neurons[probe], mask_id),
            ):
                log.warning("shared-prefix saliency disagrees with full copies; using full copies")
                self._shared = None
                return masked_copies(self, seqs, neurons, mask_id)
        return self._timed_shared(seqs, neurons, mask_id)

    def _timed_shared(self, seqs, neurons, mask_id) -> Copies:
        shared = self._shared
        assert shared is not None
        start, real, padded, passes = time.perf_counter(), shared.real, shared.tokens, shared.passes
        out = shared(seqs, neurons, mask_id)
        self.stats.seconds += time.perf_counter() - start
        self.stats.padded_tokens += shared.tokens - padded
        self.stats.tokens += shared.real - real
        self.stats.forward_passes += shared.passes - passes
        self.stats.sequences += len(seqs)
        return out

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


def _agree(a: Copies, b: Copies, tolerance: float = 1e-4) -> bool:
    """Same shapes and values to `tolerance` relative to the largest activation."""
    for (a0, am), (b0, bm) in zip(a, b, strict=True):
        if a0.shape != b0.shape or am.shape != bm.shape:
            return False
        scale = max(1.0, float(np.abs(b0).max(initial=0.0)), float(np.abs(bm).max(initial=0.0)))
        if (
            max(np.abs(a0 - b0).max(initial=0.0), np.abs(am - bm).max(initial=0.0))
            > tolerance * scale
        ):
            return False
    return True
