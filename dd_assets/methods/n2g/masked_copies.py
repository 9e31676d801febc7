"""N2G saliency's forward passes: a sequence and its copies with one position masked.

Saliency runs every pruned prompt of length n once per position k = 1..n-1 with token k replaced
by the mask token. A causal model's positions before k are the same in copy k as in the original,
so only positions k..n-1 need computing: `SharedPrefix` runs each original once, keeps its
attention keys and values, and runs each copy's suffix against them. That is about half the
tokens of running every copy whole (`masked_copies` with a plain `ActsFn`, the reference way),
and the same numbers up to float rounding.

The shared-prefix path drives a Hugging Face model's forward directly (a key/value cache, explicit
positions and a 4-D attention mask); `SharedPrefix.supported` says whether a model takes those,
and the probe checks the two paths against each other on first use before trusting it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch

ActsFn = Callable[[Sequence[np.ndarray], np.ndarray], list[np.ndarray]]
Copies = list[tuple[np.ndarray, np.ndarray]]
"""Per sequence: (its activations [n], the activations of its masked copies [n - 1, n])."""


def masked_copies(acts: ActsFn, seqs: Sequence[np.ndarray], neurons: np.ndarray, mask_id: int):
    """Every copy run whole, in one batched `acts` call: the reference computation."""
    rows = []
    for ids in seqs:
        rows.append(ids)
        for k in range(1, len(ids)):
            masked = ids.copy()
            masked[k] = mask_id
            rows.append(masked)
    outs = acts(rows, np.repeat(neurons, [len(ids) for ids in seqs]))
    results: Copies = []
    i = 0
    for ids in seqs:
        n = len(ids)
        copies = np.stack(outs[i + 1 : i + n]) if n > 1 else np.zeros((0, n), np.float32)
        results.append((outs[i], copies))
        i += n
    return results


class _KeyValues:
    """Enough of a transformers `Cache` for one forward pass: records each layer's keys and values
    (`prefix` None), or prepends a fixed prefix's to the ones the pass computes."""

    def __init__(self, prefix: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None):
        self.prefix = prefix
        self.recorded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *_a, **_kw):
        if self.prefix is None:
            self.recorded[layer_idx] = (keys, values)
            return keys, values
        k, v = self.prefix[layer_idx]
        return torch.cat([k, keys], dim=2), torch.cat([v, values], dim=2)


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean [batch, query, key] -> the additive [batch, 1, query, key] mask HF attention takes."""
    zero = torch.zeros((), dtype=dtype)
    return torch.where(allowed, zero, torch.finfo(dtype).min)[:, None]


def _gather(t: torch.Tensor, rows: torch.Tensor, source: torch.Tensor, keep: torch.Tensor):
    """Rows' keys or values [group, heads, pos, d] at `source` positions [b, p], zero where not
    `keep`, as [b, heads, p, d]."""
    got = t[rows[:, None].to(t.device), :, source.to(t.device)]  # [b, p, heads, d]
    return (got * keep[..., None, None].to(got)).permute(0, 2, 1, 3)


class SharedPrefix:
    """Masked copies through a layer reader whose model takes a cache, positions and a 4-D mask.

    `read(tokens, **model_kwargs)` returns the hooked layer's activations [batch, pos, d_mlp]
    (`LayerActivations` for one layer, fast path); `max_batch_tokens` bounds each pass.
    """

    def __init__(self, read, model: torch.nn.Module, pad_id: int, max_batch_tokens: int) -> None:
        self.read, self.pad_id, self.max_batch_tokens = read, pad_id, max_batch_tokens
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.dtype = next(model.parameters()).dtype
        self.device = next(model.parameters()).device
        self.tokens = 0  # tokens run (padding included), originals and suffixes
        self.real = 0  # the same without padding
        self.passes = 0

    @staticmethod
    def supported(model: torch.nn.Module | None) -> bool:
        if model is None:
            return False
        params = inspect.signature(model.forward).parameters
        has_cache = "cache" in params or "past_key_values" in params
        return has_cache and {"attention_mask", "position_ids"} <= set(params)

    def _run(self, ids: np.ndarray, allowed: torch.Tensor, positions: torch.Tensor, cache):
        tokens = torch.from_numpy(ids).to(self.device)
        kwargs = {
            "attention_mask": _additive(allowed, self.dtype).to(self.device),
            "position_ids": positions.to(self.device),
            # HF attention takes the cache as `cache` (`past_key_values` before transformers
            # 5.x); TransformerLens's attention bridges read `past_key_values` or `layer_past`,
            # which reaches them through the layers' **kwargs. Only one of them calls `update`.
            self.cache_arg: cache,
            "layer_past": cache,
            "use_cache": False,
        }
        (acts,) = self.read(tokens, **kwargs)
        return acts

    def __call__(self, seqs: Sequence[np.ndarray], neurons: np.ndarray, mask_id: int) -> Copies:
        """Originals in groups of about `max_batch_tokens` / 2 tokens (their keys and values are
        held while the group's copies run), each group's copies in passes of `max_batch_tokens`."""
        results: list = [None] * len(seqs)
        order = np.argsort([-len(s) for s in seqs], kind="stable")
        group: list[int] = []
        size = 0
        for i in order:
            group.append(int(i))
            size += len(seqs[i])
            if size >= self.max_batch_tokens // 2:
                self._group(seqs, neurons, mask_id, group, results)
                group, size = [], 0
        if group:
            self._group(seqs, neurons, mask_id, group, results)
        return results

    def _group(self, seqs, neurons, mask_id, group: list[int], results: list) -> None:
        width = max(len(seqs[i]) for i in group)
        ids = np.full((len(group), width), self.pad_id, dtype=np.int64)
        for r, i in enumerate(group):
            ids[r, : len(seqs[i])] = seqs[i]
        causal = torch.ones(width, width, dtype=torch.bool).tril()
        cache = _KeyValues()
        positions = torch.arange(width).expand(len(group), -1)
        acts = self._run(ids, causal.expand(len(group), -1, -1), positions, cache)
        self.tokens += ids.size
        self.real += sum(len(seqs[i]) for i in group)
        self.passes += 1
        rows = torch.arange(len(group))
        originals = acts[rows, :, torch.as_tensor(neurons[group])].cpu().numpy()
        keys = cache.recorded  # layer -> keys, values [group, heads, width, d]
        # Copies: (row in group, masked position k); suffix = positions k..n-1.
        copies = [(r, k) for r, i in enumerate(group) for k in range(1, len(seqs[i]))]
        copies.sort(key=lambda c: len(seqs[group[c[0]]]) - c[1], reverse=True)
        out: dict[tuple[int, int], np.ndarray] = {}  # (row, k) -> the copy's suffix activations
        suffix = [len(seqs[group[r]]) - k for r, k in copies]
        start = 0
        while start < len(copies):
            # Suffixes differ in length much more than whole copies did: a pass takes only those
            # within an eighth of its longest, so padding stays small.
            s_width = suffix[start]
            shortest = s_width - max(1, s_width // 8)
            stop = start + 1
            limit = start + max(1, self.max_batch_tokens // s_width)
            while stop < min(limit, len(copies)) and suffix[stop] > shortest:
                stop += 1
            self._copies(seqs, neurons, mask_id, group, keys, copies[start:stop], s_width, out)
            start = stop
        for r, i in enumerate(group):
            n = len(seqs[i])
            a0 = originals[r, :n]
            masked = np.empty((max(n - 1, 0), n), dtype=np.float32)
            for k in range(1, n):
                masked[k - 1, :k] = a0[:k]
                masked[k - 1, k:] = out[(r, k)]
            results[i] = (a0, masked)

    def _copies(self, seqs, neurons, mask_id, group, keys, take, s_width, out) -> None:
        b = len(take)
        rows = torch.as_tensor([r for r, _ in take])
        ks = torch.as_tensor([k for _, k in take])
        p_width = int(ks.max())
        ids = np.full((b, s_width), self.pad_id, dtype=np.int64)
        for j, (r, k) in enumerate(take):
            suffix = seqs[group[r]][k:]
            ids[j, : len(suffix)] = suffix
            ids[j, 0] = mask_id
        # The prefix is left-padded to p_width: column c holds original position c - p_width + k.
        col = torch.arange(p_width)
        source = (col[None, :] - p_width + ks[:, None]).clamp_min(0)  # [b, p_width]
        in_prefix = col[None, :] >= p_width - ks[:, None]
        prefix = {
            layer: (_gather(k, rows, source, in_prefix), _gather(v, rows, source, in_prefix))
            for layer, (k, v) in keys.items()
        }
        causal = torch.ones(s_width, s_width, dtype=torch.bool).tril()
        allowed = torch.cat(
            [in_prefix[:, None, :].expand(-1, s_width, -1), causal.expand(b, -1, -1)], dim=2
        )
        positions = ks[:, None] + torch.arange(s_width)[None, :]
        acts = self._run(ids, allowed, positions, _KeyValues(prefix))
        self.tokens += ids.size
        self.real += sum(len(seqs[group[r]]) - k for r, k in take)
        self.passes += 1
        picked = acts[torch.arange(b), :, torch.as_tensor(neurons[[group[r] for r, _ in take]])]
        picked = picked.cpu().numpy()
        for j, (r, k) in enumerate(take):
            out[(r, k)] = picked[j, : len(seqs[group[r]]) - k]
