"""Neuroscope-style max-activating examples and activation statistics, computed in a streaming scan.

The scan sees each batch of documents once, for all layers, and keeps only per-neuron state:

- the top-k documents by document max and the bottom-k by document min (BOS position excluded from
  the ranking, see methods.md §1.2), *with their per-token activations*: a document entering a
  neuron's top or bottom k brings its activations along, so the examples need no second pass;
- running count, sum, sum of squares, min, max and count of positive positions;
- a fine histogram on a fixed symmetric-log grid, coarsened at the end to ~40 bins spanning each
  neuron's own [min, max] (bins are equal in log space: activations are heavy-tailed);
- the document maxima of a fixed random sample of documents, from which quantile-band examples are
  picked at the end (OpenAI-/Neuronpedia-style examples at typical activation levels, not just the top);
- every neuron's activations on a fixed, seeded sample of token windows (whole windows, so the same
  sample can serve co-activation similarity and window-based scoring).

Memory is O(layers x neurons x (k x context + bins + sample + window positions)), independent of the
dataset's size. Only the quantile picks need a second pass (`gather_activations`): which band a
document falls in is known only once the sample's maxima are, so it runs over the few sampled
documents that were picked (at most `quantile_sample` of them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from jaxtyping import Float, Int

QUANTILE_BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.5), (0.5, 0.9), (0.9, 0.99), (0.99, 1.0))


@dataclass(frozen=True)
class ScanConfig:
    """Parameters of the activation scan; defaults follow Neuroscope (k = 20) where it has one."""

    top_k: int = 20
    hist_bins: int = 40  # bins of the served histogram, between the neuron's min and max
    fine_bins: int = 512  # internal bins on the symmetric-log grid
    fine_scale: float = 0.01  # grid: sign(x) log1p(|x| / fine_scale); ~4% relative resolution
    fine_limit: float = 1000.0  # |x| beyond this lands in the edge bins (min/max stay exact)
    hist_stride: int = 4  # histogram counts every n-th position (moments and extremes use all)
    # Documents whose maxima are kept for the quantile bands; the second pass reruns the picked ones,
    # so this bounds its cost (128 of the default 768 documents).
    quantile_sample: int = 128
    per_band: int = 2
    bands: tuple[tuple[float, float], ...] = QUANTILE_BANDS
    seed: int = 0
    sample_windows: int = 32  # co-activation sample: seeded windows, one per sampled document
    sample_window_len: int = 64  # tokens per window (capped at context length - 1, BOS excluded)

    def __post_init__(self) -> None:
        if self.sample_windows < 0 or self.sample_window_len < 1:
            raise ValueError("sample_windows must be >= 0 and sample_window_len >= 1")
        if self.top_k < 1 or self.hist_bins < 1 or self.fine_bins < 2 or self.hist_stride < 1:
            raise ValueError("top_k, hist_bins, hist_stride must be >= 1 and fine_bins >= 2")
        for lo, hi in self.bands:
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"quantile band ({lo}, {hi}) must satisfy 0 <= lo < hi <= 1")


def band_label(lo: float, hi: float) -> str:
    """>>> band_label(0.9, 0.99)
    '0.90-0.99'
    """
    return f"{lo:.2f}-{hi:.2f}"


@dataclass
class ScanResult:
    """Per-layer arrays, layer-major: index [i] is the i-th scanned layer."""

    layers: list[int]
    top_values: np.ndarray  # [layer, d_mlp, k] float32, descending; -inf where fewer docs than k
    top_docs: np.ndarray  # [layer, d_mlp, k] int64; -1 where fewer docs than k
    top_acts: np.ndarray  # [layer, d_mlp, k, pos] float32: per-token activations, BOS included
    bottom_values: (
        np.ndarray
    )  # [layer, d_mlp, k] float32, ascending (most negative document min first)
    bottom_docs: np.ndarray  # [layer, d_mlp, k] int64; -1 where fewer docs than k
    bottom_acts: np.ndarray  # [layer, d_mlp, k, pos] float32
    count: np.ndarray  # [layer, d_mlp] int64
    max: np.ndarray  # [layer, d_mlp] float32
    min: np.ndarray
    mean: np.ndarray  # float64
    std: np.ndarray
    frac_positive: np.ndarray
    hist_edges: np.ndarray  # [layer, d_mlp, bins + 1] float32, from min to max
    hist_counts: np.ndarray  # [layer, d_mlp, bins] int64, positions sampled every hist_stride
    quantile_docs: np.ndarray  # [layer, d_mlp, bands, per_band] int64; -1 where none
    quantile_values: np.ndarray  # [layer, d_mlp, bands, per_band] float32
    window_docs: np.ndarray  # [windows] int64: the co-activation sample's documents
    window_starts: np.ndarray  # [windows] int64: first position of each window (>= 1)
    window_len: int
    sample_acts: np.ndarray  # [layer, windows * window_len, d_mlp] float32


class ActivationScan:
    """Streaming per-neuron state over batches of documents. Feed `update`, then call `result`."""

    def __init__(
        self,
        layers: Sequence[int],
        d_mlp: int,
        num_docs: int,
        config: ScanConfig,
        context_length: int,
    ):
        self.layers = list(layers)
        self.d_mlp = d_mlp
        self.num_docs = num_docs
        self.cfg = config
        n_layers, k, pos = len(self.layers), config.top_k, context_length
        # Both polarities share one ranking routine: the bottom k are the top k of -min.
        # Values and documents are kept in rank order; a document's activations stay in the slot
        # they were written to (`*_slot`: rank -> slot), so a batch costs one write per document
        # that enters a neuron's list instead of a reshuffle of the whole [k, d_mlp, pos] buffer.
        self.top_values = torch.full((n_layers, k, d_mlp), -math.inf)
        self.top_docs = torch.full((n_layers, k, d_mlp), -1, dtype=torch.int64)
        self.top_slot = torch.arange(k)[None, :, None].repeat(n_layers, 1, d_mlp)
        self.top_acts = torch.zeros(n_layers, k, d_mlp, pos)
        self.neg_values = torch.full((n_layers, k, d_mlp), -math.inf)
        self.neg_docs = torch.full((n_layers, k, d_mlp), -1, dtype=torch.int64)
        self.neg_slot = self.top_slot.clone()
        self.neg_acts = torch.zeros(n_layers, k, d_mlp, pos)
        self.count = 0
        self.sum = torch.zeros(n_layers, d_mlp, dtype=torch.float64)
        self.sumsq = torch.zeros(n_layers, d_mlp, dtype=torch.float64)
        self.max = torch.full((n_layers, d_mlp), -math.inf)
        self.min = torch.full((n_layers, d_mlp), math.inf)
        self.positive = torch.zeros(n_layers, d_mlp, dtype=torch.int64)
        self.fine = torch.zeros(n_layers, config.fine_bins * d_mlp, dtype=torch.int64)
        self._fine_half = math.log1p(config.fine_limit / config.fine_scale)
        # A fixed, seeded sample of documents whose maxima we keep, for the quantile bands.
        rng = np.random.default_rng(config.seed)
        size = min(config.quantile_sample, num_docs)
        self.sample_docs = np.sort(rng.choice(num_docs, size=size, replace=False))
        self._sample_pos = torch.full((num_docs,), -1, dtype=torch.int64)
        self._sample_pos[torch.from_numpy(self.sample_docs)] = torch.arange(size)
        self.sample_max = torch.full((n_layers, size, d_mlp), -math.inf)
        # The co-activation sample: one seeded window per sampled document (own generator, so the
        # quantile sample above does not depend on these settings).
        wrng = np.random.default_rng([config.seed, 1])
        self.window_len = min(config.sample_window_len, max(pos - 1, 0))
        n_windows = min(config.sample_windows, num_docs) if self.window_len else 0
        self.window_docs = np.sort(wrng.choice(num_docs, size=n_windows, replace=False))
        self.window_starts = wrng.integers(1, pos - self.window_len + 1, size=n_windows)
        self._window_slot = torch.full((num_docs,), -1, dtype=torch.int64)
        self._window_slot[torch.from_numpy(self.window_docs)] = torch.arange(n_windows)
        self.sample_acts = torch.zeros(n_layers, n_windows * self.window_len, d_mlp)

    @torch.inference_mode()
    def update(
        self,
        layer_acts: Sequence[Float[torch.Tensor, "batch pos d_mlp"]],
        doc_ids: Int[torch.Tensor, " batch"],
    ) -> None:
        """Fold one batch in. Position 0 (BOS) is excluded from everything."""
        cfg = self.cfg
        batch = doc_ids.shape[0]
        in_sample = self._sample_pos[doc_ids]  # [batch]; -1 = not sampled
        sampled = in_sample >= 0
        windows = [(b, int(s)) for b, s in enumerate(self._window_slot[doc_ids].tolist()) if s >= 0]
        ids = doc_ids[:, None].expand(batch, self.d_mlp)
        for i, acts in enumerate(layer_acts):
            x = acts[:, 1:, :]  # [batch, pos-1, d_mlp]
            doc_max = x.amax(dim=1)  # [batch, d_mlp]
            per_neuron = acts.permute(0, 2, 1)  # [batch, d_mlp, pos]
            top = (self.top_values, self.top_docs, self.top_slot, self.top_acts)
            self._rank(*top, i, doc_max, ids, per_neuron)
            doc_min = x.amin(dim=1)
            neg = (self.neg_values, self.neg_docs, self.neg_slot, self.neg_acts)
            self._rank(*neg, i, -doc_min, ids, per_neuron)
            for b, slot in windows:
                start = int(self.window_starts[slot])
                rows = slice(slot * self.window_len, (slot + 1) * self.window_len)
                self.sample_acts[i, rows] = acts[b, start : start + self.window_len]
            flat = x.reshape(-1, self.d_mlp)  # [batch * (pos-1), d_mlp]
            # float32 per batch (thousands of terms), float64 across batches: ~10x cheaper than
            # reducing in float64 and accurate to ~1e-7 relative per batch.
            self.sum[i] += flat.sum(0)
            self.sumsq[i] += (flat * flat).sum(0)
            self.max[i] = torch.maximum(self.max[i], doc_max.amax(0))
            self.min[i] = torch.minimum(self.min[i], doc_min.amin(0))
            self.positive[i] += (flat > 0).sum(0)
            self._add_fine(i, x[:, :: cfg.hist_stride, :].reshape(-1, self.d_mlp))
            if sampled.any():
                self.sample_max[i, in_sample[sampled]] = doc_max[sampled]
        self.count += batch * (layer_acts[0].shape[1] - 1)

    def _rank(
        self,
        values: torch.Tensor,
        docs: torch.Tensor,
        slots: torch.Tensor,
        kept: torch.Tensor,
        i: int,
        batch_values: Float[torch.Tensor, "batch d_mlp"],
        batch_docs: Int[torch.Tensor, "batch d_mlp"],
        batch_acts: Float[torch.Tensor, "batch d_mlp pos"],
    ) -> None:
        """Merge a batch into layer i's running top k, writing the activations of entrants only.

        An entrant takes the slot of a document it pushed out: per neuron, the j-th entrant (in
        rank order) gets the j-th freed slot (in old rank order).
        """
        k = self.cfg.top_k
        merged = torch.cat([values[i], batch_values])  # [k + batch, d_mlp]
        values[i], idx = merged.topk(k, dim=0)
        docs[i] = torch.cat([docs[i], batch_docs]).gather(0, idx)
        entrant = idx >= k  # [k, d_mlp]: ranks now held by a document of this batch
        old = slots[i]
        if not bool(entrant.any()):
            slots[i] = old.gather(0, idx)
            return
        stayed = torch.zeros(k + 1, old.shape[1], dtype=torch.int64)
        stayed.scatter_add_(0, torch.where(entrant, k, idx), torch.ones_like(idx))
        freed_first = torch.argsort(stayed[:k].clamp_max(1), dim=0, stable=True)
        freed = old.gather(0, freed_first)  # per neuron: freed slots first, in old rank order
        entrants_first = torch.argsort((~entrant).to(torch.int64), dim=0, stable=True)
        new = old.gather(0, torch.where(entrant, 0, idx))  # stayers keep their slot
        fill = torch.arange(k)[:, None] < entrant.sum(0)  # the j-th entrant, j < entrants
        new.scatter_(0, entrants_first, torch.where(fill, freed, new.gather(0, entrants_first)))
        slots[i] = new
        rank, neuron = entrant.nonzero(as_tuple=True)
        kept[i][new[rank, neuron], neuron] = batch_acts[idx[rank, neuron] - k, neuron]

    def _in_rank_order(self, slots: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """Reorder the kept activations from slot to rank order, in place, one layer at a time."""
        for i in range(kept.shape[0]):
            kept[i] = kept[i].gather(0, slots[i][..., None].expand(-1, -1, kept.shape[-1]))
            slots[i] = torch.arange(slots.shape[1])[:, None]
        return kept

    def _to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Activation -> position on the fine grid, in [0, fine_bins)."""
        u = torch.log1p(x.abs() / self.cfg.fine_scale).copysign_(x)
        return u.add_(self._fine_half).mul_(self.cfg.fine_bins / (2 * self._fine_half))

    def _from_grid(self, g: torch.Tensor) -> torch.Tensor:
        u = g * (2 * self._fine_half / self.cfg.fine_bins) - self._fine_half
        return torch.expm1(u.abs()).copysign_(u) * self.cfg.fine_scale

    def _add_fine(self, i: int, x: Float[torch.Tensor, "n d_mlp"]) -> None:
        f = self.cfg.fine_bins
        b = self._to_grid(x).to(torch.int64).clamp_(0, f - 1)  # [n, d_mlp]
        b = b * self.d_mlp + torch.arange(self.d_mlp)  # flat (bin, neuron) index
        self.fine[i] += torch.bincount(b.reshape(-1), minlength=f * self.d_mlp)

    def result(self) -> ScanResult:
        count = max(self.count, 1)
        mean = self.sum / count
        var = (self.sumsq / count - mean * mean).clamp_min(0)
        edges, counts = self._rebin()
        q_docs, q_values = self._quantile_examples()
        n_layers = len(self.layers)
        return ScanResult(
            layers=self.layers,
            top_values=self.top_values.permute(0, 2, 1).numpy().astype(np.float32),
            top_docs=self.top_docs.permute(0, 2, 1).numpy(),
            top_acts=self._in_rank_order(self.top_slot, self.top_acts).permute(0, 2, 1, 3).numpy(),
            bottom_values=(-self.neg_values).permute(0, 2, 1).numpy().astype(np.float32),
            bottom_docs=self.neg_docs.permute(0, 2, 1).numpy(),
            bottom_acts=self._in_rank_order(self.neg_slot, self.neg_acts)
            .permute(0, 2, 1, 3)
            .numpy(),
            count=np.full((n_layers, self.d_mlp), self.count, dtype=np.int64),
            max=self.max.numpy(),
            min=self.min.numpy(),
            mean=mean.numpy(),
            std=var.sqrt().numpy(),
            frac_positive=(self.positive.double() / count).numpy(),
            hist_edges=edges,
            hist_counts=counts,
            quantile_docs=q_docs,
            quantile_values=q_values,
            window_docs=self.window_docs.astype(np.int64),
            window_starts=self.window_starts.astype(np.int64),
            window_len=self.window_len,
            sample_acts=self.sample_acts.numpy(),
        )

    def _rebin(self) -> tuple[np.ndarray, np.ndarray]:
        """Merge the fine bins between each neuron's min and max into `hist_bins` groups.

        Groups are runs of whole fine bins, so counts are exact for the returned edges (the
        outer edges are the neuron's true min and max, which lie inside the outer fine bins).
        """
        f, bins = self.cfg.fine_bins, self.cfg.hist_bins
        n_layers = len(self.layers)
        fine = self.fine.view(n_layers, f, self.d_mlp).permute(0, 2, 1)  # [layer, d_mlp, f]
        cum = torch.nn.functional.pad(fine.cumsum(-1), (1, 0))  # [layer, d_mlp, f + 1]
        first = self._to_grid(self.min).to(torch.int64).clamp(0, f - 1)  # [layer, d_mlp]
        last = self._to_grid(self.max).to(torch.int64).clamp(0, f - 1)
        span = (last - first + 1).unsqueeze(-1)
        steps = torch.arange(bins + 1)
        bounds = first.unsqueeze(-1) + (steps * span) // bins  # [layer, d_mlp, bins + 1]
        counts = cum.gather(-1, bounds[..., 1:]) - cum.gather(-1, bounds[..., :-1])
        lo, hi = self.min.unsqueeze(-1), self.max.unsqueeze(-1)
        edges = torch.minimum(torch.maximum(self._from_grid(bounds.float()), lo), hi)
        edges[..., 0], edges[..., -1] = self.min, self.max
        return edges.numpy().astype(np.float32), counts.numpy()

    def _quantile_examples(self) -> tuple[np.ndarray, np.ndarray]:
        """Pick `per_band` sampled documents per band of the neuron's document-max distribution.

        Bands are quantiles of the sample itself, so band membership is a rank range in the sorted
        sample; picks are spread evenly over that range (deterministic, no RNG).
        """
        cfg = self.cfg
        size = len(self.sample_docs)
        shape = (len(self.layers), self.d_mlp, len(cfg.bands), cfg.per_band)
        docs = np.full(shape, -1, dtype=np.int64)
        values = np.full(shape, np.nan, dtype=np.float32)
        if size == 0:
            return docs, values
        sorted_vals, order = self.sample_max.sort(dim=1)  # [layer, size, d_mlp], ascending
        sample_docs = torch.from_numpy(self.sample_docs)
        for b, (lo, hi) in enumerate(cfg.bands):
            first, end = int(math.floor(lo * size)), int(math.ceil(hi * size))
            end = max(end, first + 1) if first < size else first
            span = end - first
            if span <= 0:
                continue
            for j in range(min(cfg.per_band, span)):
                rank = first + int((j + 0.5) * span / min(cfg.per_band, span))
                docs[:, :, b, j] = sample_docs[order[:, rank, :]].numpy()
                values[:, :, b, j] = sorted_vals[:, rank, :].numpy()
        return docs, values


def batched(num_docs: int, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, num_docs, batch_size):
        yield np.arange(start, min(start + batch_size, num_docs))


def scan(
    read_layers: Callable[[torch.Tensor], list[torch.Tensor]],
    tokens: Int[torch.Tensor, "doc pos"],
    layers: Sequence[int],
    d_mlp: int,
    config: ScanConfig,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """Run every document through `read_layers` once and return the per-neuron scan state."""
    num_docs = tokens.shape[0]
    state = ActivationScan(layers, d_mlp, num_docs, config, tokens.shape[1])
    done = 0
    for ids in batched(num_docs, batch_size):
        doc_ids = torch.from_numpy(ids)
        state.update(read_layers(tokens[doc_ids]), doc_ids)
        done += len(ids)
        if progress is not None:
            progress(done, num_docs)
    return state.result()


SERVED_DECIMALS = 6


def round_served(acts: np.ndarray) -> np.ndarray:
    """Activations as stored and served: rounded to 6 decimals in float64 (float32 rounding is
    off by one in the last decimal), then float32."""
    return acts.astype(np.float64).round(SERVED_DECIMALS).astype(np.float32)


@torch.inference_mode()
def gather_activations(
    read_layers: Callable[[torch.Tensor], list[torch.Tensor]],
    tokens: Int[torch.Tensor, "doc pos"],
    layers: Sequence[int],
    pair_layer: np.ndarray,
    pair_neuron: np.ndarray,
    pair_doc: np.ndarray,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Second pass: per-token activations for each (layer, neuron, document) pair.

    Only the documents named in `pair_doc` are run, each once, for all layers together.
    Returns float32 [pairs, pos]; `pair_layer` holds layer numbers (members of `layers`).
    """
    layer_slot = {layer: i for i, layer in enumerate(layers)}
    slots = np.array([layer_slot[int(layer)] for layer in pair_layer], dtype=np.int64)
    out = np.empty((len(pair_doc), tokens.shape[1]), dtype=np.float32)
    order = np.argsort(pair_doc, kind="stable")
    sorted_docs = pair_doc[order]
    unique_docs = np.unique(pair_doc)
    done = 0
    for start in range(0, len(unique_docs), batch_size):
        batch_docs = unique_docs[start : start + batch_size]
        acts = read_layers(tokens[torch.from_numpy(batch_docs)])  # per layer [batch, pos, d_mlp]
        lo = np.searchsorted(sorted_docs, batch_docs[0], side="left")
        hi = np.searchsorted(sorted_docs, batch_docs[-1], side="right")
        sel = order[lo:hi]  # pairs whose document is in this batch
        pos = np.searchsorted(batch_docs, pair_doc[sel])
        for slot in np.unique(slots[sel]):
            mine = sel[slots[sel] == slot]
            rows = torch.from_numpy(pos[slots[sel] == slot])
            cols = torch.from_numpy(pair_neuron[mine].astype(np.int64))
            out[mine] = acts[slot].permute(0, 2, 1)[rows, cols].numpy()
        done += len(batch_docs)
        if progress is not None:
            progress(done, len(unique_docs))
    return out


def served_examples(choices: pl.DataFrame, acts: np.ndarray) -> pl.DataFrame:
    """`choices` rows (minus doc_max) with their per-token activations as served.

    Rounds once, in float64 (float32 rounding is off by one in the last decimal), and takes the
    extremes and argmax from the rounded values: a text's max_activation is then exactly the
    largest activation served with it. BOS is excluded from the extremes, as from the ranking.
    """
    acts = round_served(acts)  # [rows, pos]
    body = acts[:, 1:]
    return choices.drop("doc_max").with_columns(
        pl.Series("activations", acts),
        pl.Series("max_activation", body.max(axis=1)),
        pl.Series("min_activation", body.min(axis=1)),
        pl.Series("max_activating_token_index", body.argmax(axis=1).astype(np.int32) + 1),
    )
