"""A fixed grid of token windows over the dataset, embedded once per model and shared by every neuron.

Scoring an explanation by embedding similarity needs text windows around each neuron's
activations. Embedding per-neuron windows would cost an encoder pass per neuron (46,080 on the
default model); instead every document is cut once into windows of `length` tokens every
`stride` tokens (BOS never included, the last window flush with the document's end so every
token is covered), and a neuron's windows are looked up on that grid:

- a *peak* window: of the windows holding a token, the one whose start is closest to `before`
  tokens ahead of it (on an overlapping grid, stride 16, the token lands 16-31 tokens in,
  after its context, as OpenAI's 64-token excerpts put the max token 48 tokens in);
- the windows of a *span* (e.g. a uniform-sample window of the scan): the grid windows lying
  inside it, or the ones containing it when it is narrower than a window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Int


@dataclass(frozen=True)
class WindowGrid:
    """Where the shared windows lie in every document. The defaults are Delphi's: consecutive
    32-token windows, so the encoder reads each token once (on 2 CPU cores an overlapping grid,
    stride 16, costs twice as much: docs/benchmarks.md)."""

    length: int = 32
    """Tokens per window (clipped to the document length minus BOS)."""
    stride: int = 32
    """Tokens between window starts; below `length`, windows overlap and a peak keeps context."""
    before: int = 24
    """Preferred tokens before a peak in its window."""

    def __post_init__(self) -> None:
        if self.length < 1 or self.stride < 1 or not 0 <= self.before < self.length:
            raise ValueError(f"need length, stride >= 1 and 0 <= before < length, got {self}")

    def width(self, ctx: int) -> int:
        """Window width in documents of `ctx` tokens (BOS first)."""
        if ctx < 2:
            raise ValueError(f"documents of {ctx} tokens leave no room for a window after BOS")
        return min(self.length, ctx - 1)

    def starts(self, ctx: int) -> Int[np.ndarray, " k"]:
        """Window starts in a document of `ctx` tokens.

        >>> WindowGrid(length=32, stride=16).starts(128).tolist()
        [1, 17, 33, 49, 65, 81, 96]
        """
        last = ctx - self.width(ctx)
        starts = np.arange(1, last + 1, self.stride, dtype=np.int64)
        return starts if starts[-1] == last else np.append(starts, last)

    def peak_starts(self, peak: Int[np.ndarray, " row"], ctx: int) -> Int[np.ndarray, " row"]:
        """The start of each peak's window: among the windows holding the peak token, the one
        whose start is closest to ``peak - before`` (the earlier one on a tie).

        >>> WindowGrid(length=32, stride=16).peak_starts(np.array([1, 20, 40, 127]), 128).tolist()
        [1, 1, 17, 96]
        """
        starts, width = self.starts(ctx), self.width(ctx)
        p = np.clip(np.asarray(peak, dtype=np.int64), 1, ctx - 1)[:, None]
        holds = (starts[None, :] <= p) & (p < starts[None, :] + width)
        gap = np.where(holds, np.abs(starts[None, :] - (p - self.before)), np.iinfo(np.int64).max)
        return starts[np.argmin(gap, axis=1)]

    def span_starts(self, span_start: int, span_length: int, ctx: int) -> Int[np.ndarray, " k"]:
        """Starts of the windows of a span: those inside it, or, for a span narrower than a
        window, those containing it.

        >>> WindowGrid(length=32, stride=16).span_starts(10, 64, 128).tolist()
        [17, 33]
        """
        starts, width = self.starts(ctx), self.width(ctx)
        overlap = np.minimum(starts + width, span_start + span_length) - np.maximum(
            starts, span_start
        )
        return starts[overlap >= min(width, span_length)]


def grid_windows(
    doc_index: Sequence[int], tokens: Sequence[Sequence[str]], grid: WindowGrid
) -> tuple[Int[np.ndarray, " window"], Int[np.ndarray, " window"], int, list[str]]:
    """Every grid window of the given documents (token strings, BOS first, all one length).

    Returns (doc_index, start per window, the width, the window's text: its tokens joined).
    """
    if not len(tokens):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0, []
    ctx = len(tokens[0])
    if any(len(t) != ctx for t in tokens):
        raise ValueError("documents differ in length: the grid needs one context length")
    starts, width = grid.starts(ctx), grid.width(ctx)
    docs = np.repeat(np.asarray(doc_index, dtype=np.int64), len(starts))
    texts = ["".join(t[s : s + width]) for t in tokens for s in starts.tolist()]
    return docs, np.tile(starts, len(tokens)), width, texts


class WindowLookup:
    """(doc_index, start) -> row of a stored set of windows, -1 where there is none."""

    def __init__(self, doc_index: Int[np.ndarray, " window"], start: Int[np.ndarray, " window"]):
        self._stride = int(np.max(start, initial=0)) + 1
        keys = np.asarray(doc_index, dtype=np.int64) * self._stride + np.asarray(start)
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]

    def rows(self, doc_index: np.ndarray, start: np.ndarray) -> Int[np.ndarray, ...]:
        doc_index, start = np.asarray(doc_index, np.int64), np.asarray(start, np.int64)
        if not len(self._keys):
            return np.full(doc_index.shape, -1, dtype=np.int64)
        probe = doc_index * self._stride + start
        at = np.clip(np.searchsorted(self._keys, probe), 0, len(self._keys) - 1)
        found = (self._keys[at] == probe) & (start < self._stride) & (start >= 0)
        return np.where(found, self._order[at], -1)
