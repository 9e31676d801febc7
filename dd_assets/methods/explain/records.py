"""Excerpts for explaining and scoring: splits, 64-token windows, 0-10 scaling, record blocks.

Our Neuroscope examples are whole documents (BOS first). Following methods.md §3.1 and §3.8, each
neuron's excerpts are cut from them as fixed-width windows and split by interleaving:

- *explain* split: top examples of rank ``explain_offset, explain_offset + top_stride, ...``;
- *score* split: top examples of rank ``score_offset, score_offset + top_stride, ...`` plus
  "random" excerpts, taken from the quantile-band examples of rank ``random_offset, + random_stride,
  ...`` (documents drawn at random within bands of the document-max distribution).

A score excerpt whose document is also an explain document (a quantile sample can be a top
document) is dropped, so explaining and scoring never see the same document. Top windows are
centred on the document's max token (``before`` tokens before it); random windows start at a
position derived from (document, neuron), independent of where the neuron fires. BOS is never
part of a window.

Everything is vectorised over the rows of one layer: a layer of SmolLM2 has ~43k example rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

TOP, RANDOM = "top", "quantile"
UNIFORM = "random"  # a window from the fixed, seeded uniform sample of the dataset


@dataclass(frozen=True)
class SplitConfig:
    """How excerpts are cut and split (defaults: methods.md §3.1 interleaving, §3.8 windows)."""

    window: int = 64
    """Tokens per excerpt (clipped to the document length minus BOS)."""
    before: int = 48
    """Tokens kept before the max token in a top excerpt."""
    per_split: int = 5
    """Excerpts of each kind per split, at most."""
    top_stride: int = 4
    explain_offset: int = 0
    score_offset: int = 2
    random_stride: int = 3
    random_offset: int = 1

    def __post_init__(self) -> None:
        if self.window < 1 or not 0 <= self.before < self.window:
            raise ValueError(f"need window >= 1 and 0 <= before < window, got {self}")
        if self.per_split < 1 or self.top_stride < 1 or self.random_stride < 1:
            raise ValueError(f"per_split and strides must be >= 1, got {self}")
        if self.explain_offset % self.top_stride == self.score_offset % self.top_stride:
            raise ValueError("explain and score offsets pick the same top ranks")

    def explain_ranks(self) -> list[int]:
        return [self.explain_offset + i * self.top_stride for i in range(self.per_split)]

    def score_ranks(self) -> list[int]:
        return [self.score_offset + i * self.top_stride for i in range(self.per_split)]

    def random_ranks(self) -> list[int]:
        return [self.random_offset + i * self.random_stride for i in range(self.per_split)]


@dataclass
class Excerpts:
    """Windows of one layer's examples, one row per excerpt, all of the same width.

    `explain` marks the explain split (the rest is the score split). Rows are sorted by
    (neuron, explain first, top before random, rank).
    """

    neuron: Int[np.ndarray, " row"]
    explain: np.ndarray  # bool [row]
    kind: np.ndarray  # str [row]: "top", "quantile" (a band sample) or "random" (uniform sample)
    rank: Int[np.ndarray, " row"]
    doc_index: Int[np.ndarray, " row"]
    start: Int[np.ndarray, " row"]  # first position of the window in its document
    token_ids: Int[np.ndarray, "row pos"]
    activations: Float[np.ndarray, "row pos"]  # raw activations

    @property
    def width(self) -> int:
        return int(self.token_ids.shape[1])

    def take(self, mask: np.ndarray) -> Excerpts:
        return Excerpts(
            *(getattr(self, f)[mask] for f in self.__dataclass_fields__)  # type: ignore[arg-type]
        )

    def around_peaks(self, width: int) -> Excerpts:
        """Every excerpt cut to `width` tokens around its largest activation (shorter prompts
        for a slow endpoint; tests and benchmarks)."""
        if not 1 <= width <= self.width:
            raise ValueError(f"width must be 1..{self.width}, got {width}")
        first = np.clip(self.activations.argmax(axis=1) - width // 2, 0, self.width - width)
        cols = first[:, None] + np.arange(width)[None, :]  # [row, pos]
        return Excerpts(
            neuron=self.neuron, explain=self.explain, kind=self.kind, rank=self.rank,
            doc_index=self.doc_index, start=self.start + first,
            token_ids=np.take_along_axis(self.token_ids, cols, axis=1),
            activations=np.take_along_axis(self.activations, cols, axis=1),
        )  # fmt: skip

    def doc_indices(self, neuron: int, explain: bool) -> list[int]:
        sel = (self.neuron == neuron) & (self.explain == explain)
        return self.doc_index[sel].tolist()


def with_random_windows(
    excerpts: Excerpts,
    window_doc: Int[np.ndarray, " window"],
    window_start: Int[np.ndarray, " window"],
    window_token_ids: Int[np.ndarray, "window pos"],
    window_activations: Float[np.ndarray, "neuron window pos"],
    per_neuron: int = 5,
    seed: int = 0,
) -> Excerpts:
    """The published protocol's random half: replace each neuron's quantile score rows by
    `per_neuron` windows drawn uniformly, without replacement, from a fixed sample of dataset
    windows (every neuron's activations on the same windows, indexed by neuron).

    The draw is seeded by (`seed`, neuron), so it is reproducible, and it skips windows from the
    neuron's explain documents, so explaining and scoring never share a document. Windows wider
    than the excerpts are cut to the excerpt width (from their start).
    """
    window_doc = np.asarray(window_doc, dtype=np.int64)
    n_windows = len(window_doc)
    ids = np.asarray(window_token_ids)
    acts = np.asarray(window_activations)
    if ids.shape[0] != n_windows or acts.shape[1:2] != (n_windows,):
        raise ValueError(f"{n_windows} windows but token ids {ids.shape}, activations {acts.shape}")
    width = excerpts.width
    if ids.shape[1] < width:
        raise ValueError(f"windows of {ids.shape[1]} tokens are narrower than excerpts ({width})")
    keep = ~((excerpts.kind == RANDOM) & ~excerpts.explain)
    base = excerpts.take(keep)
    rows: list[tuple[int, int, int]] = []  # (neuron, rank, window)
    for n in np.unique(excerpts.neuron).tolist():
        if n >= acts.shape[0]:
            raise ValueError(f"no sample activations for neuron {n}")
        explain_docs = excerpts.doc_index[(excerpts.neuron == n) & excerpts.explain]
        order = np.random.default_rng([seed, n]).permutation(n_windows)
        order = order[~np.isin(window_doc[order], explain_docs)][:per_neuron]
        rows.extend((n, rank, int(w)) for rank, w in enumerate(order.tolist()))
    picked = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    neuron, rank, window = picked[:, 0], picked[:, 1], picked[:, 2]
    added = Excerpts(
        neuron=neuron,
        explain=np.zeros(len(picked), dtype=bool),
        kind=np.full(len(picked), UNIFORM),
        rank=rank,
        doc_index=window_doc[window],
        start=np.asarray(window_start, dtype=np.int64)[window],
        token_ids=ids[window, :width].astype(np.int64),
        activations=acts[neuron, window, :width].astype(np.float32),
    )
    merged = Excerpts(
        *(
            np.concatenate([getattr(base, f), getattr(added, f)])
            for f in Excerpts.__dataclass_fields__
        )
    )
    order = np.lexsort((merged.rank, merged.kind != TOP, ~merged.explain, merged.neuron))
    return merged.take(order)


def _positions(start: np.ndarray, width: int) -> np.ndarray:
    return start[:, None] + np.arange(width)[None, :]  # [row, pos]


def split_rows(
    neuron: Int[np.ndarray, " row"],
    kind: np.ndarray,
    rank: Int[np.ndarray, " row"],
    doc_index: Int[np.ndarray, " row"],
    cfg: SplitConfig = SplitConfig(),
) -> tuple[Int[np.ndarray, " excerpt"], np.ndarray]:
    """Which example rows make up each neuron's explain and score splits.

    Returns (row numbers into the inputs, sorted by neuron, explain first, top before random,
    rank; whether each is in the explain split). A score row whose document is an explain
    document of the same neuron, or repeats one of its score documents, is left out. Every
    scorer of an explanation reads its held-out rows from here, so they all see the same ones.
    """
    neuron = np.asarray(neuron, dtype=np.int64)
    kind = np.asarray(kind, dtype=str)
    rank = np.asarray(rank, dtype=np.int64)
    doc_index = np.asarray(doc_index, dtype=np.int64)
    is_top, is_random = kind == TOP, kind == RANDOM
    explain = is_top & np.isin(rank, cfg.explain_ranks())
    score = (is_top & np.isin(rank, cfg.score_ranks())) | (
        is_random & np.isin(rank, cfg.random_ranks())
    )
    keep = explain | score
    order = np.lexsort((rank[keep], ~is_top[keep], ~explain[keep], neuron[keep]))
    rows = np.flatnonzero(keep)[order]
    neuron, explain, doc_index = neuron[rows], explain[rows], doc_index[rows]

    # Drop score rows whose document is an explain document of the same neuron, or a repeat.
    key = neuron * (int(doc_index.max(initial=0)) + 1) + doc_index
    explain_keys = np.unique(key[explain])
    _, first = np.unique(key, return_index=True)
    is_first = np.zeros(len(key), dtype=bool)
    is_first[first] = True
    clash = ~explain & (np.isin(key, explain_keys) | ~is_first)
    return rows[~clash], explain[~clash]


def cut_excerpts(
    neuron: Int[np.ndarray, " row"],
    kind: np.ndarray,
    rank: Int[np.ndarray, " row"],
    doc_index: Int[np.ndarray, " row"],
    activations: Float[np.ndarray, "row ctx"],
    max_token: Int[np.ndarray, " row"],
    doc_token_ids: Int[np.ndarray, "doc ctx"],
    cfg: SplitConfig = SplitConfig(),
    seed: int = 0,
) -> Excerpts:
    """Select the explain and score examples of every neuron and cut their windows.

    Inputs are the rows of ``neuron_examples`` for one layer (any order) and the layer's dataset
    token ids, row = doc_index. `seed` varies the random windows (use the layer index).
    """
    kind = np.asarray(kind, dtype=str)
    rows, explain = split_rows(neuron, kind, rank, doc_index, cfg)
    neuron = np.asarray(neuron, dtype=np.int64)[rows]
    doc_index = np.asarray(doc_index, dtype=np.int64)[rows]
    rank = np.asarray(rank, dtype=np.int64)

    ctx = activations.shape[1]
    width = min(cfg.window, ctx - 1)
    if width < 1:
        raise ValueError(f"documents of {ctx} tokens leave no room for a window after BOS")
    top_rows = kind[rows] == TOP
    top_start = np.clip(np.asarray(max_token)[rows] - cfg.before, 1, ctx - width)
    spread = ctx - width  # possible starts: 1 .. ctx - width
    mixed = (doc_index * 1_000_003 + neuron * 7_919 + seed * 104_729) % spread
    start = np.where(top_rows, top_start, 1 + mixed).astype(np.int64)
    pos = _positions(start, width)
    acts = np.take_along_axis(np.asarray(activations)[rows], pos, axis=1)
    ids = np.take_along_axis(np.asarray(doc_token_ids)[doc_index], pos, axis=1)
    return Excerpts(
        neuron=neuron,
        explain=explain,
        kind=kind[rows],
        rank=rank[rows],
        doc_index=doc_index,
        start=start,
        token_ids=ids.astype(np.int64),
        activations=acts.astype(np.float32),
    )


# -- 0-10 scaling and record blocks (methods.md §3.2) --------------------------------------------


def max_activation(activations: Float[np.ndarray, "row pos"]) -> float:
    """The scale of a set of records: the largest positive activation, 0 if none is positive."""
    a = np.asarray(activations, dtype=np.float64)
    return float(np.maximum(a, 0).max(initial=0.0))


def normalise(activations, max_act: float) -> np.ndarray:
    """Integers 0-10: floor(10 * relu(a) / max_act), capped at 10; all zeros if max_act <= 0.

    >>> normalise([-0.2, 0.0, 1.3, 2.6], 2.6).tolist()
    [0, 0, 5, 10]
    """
    a = np.asarray(activations, dtype=np.float64)
    if max_act <= 0:
        return np.zeros(a.shape, dtype=np.int64)
    # A tiny epsilon keeps exact multiples (1.3 / 2.6 * 10 = 4.999...) on the right integer.
    scaled = np.floor(10 * np.maximum(a, 0) / max_act + 1e-9)
    return np.minimum(scaled, 10).astype(np.int64)


def scaled_rows(
    activations: Float[np.ndarray, "row pos"], scale: Float[np.ndarray, " row"]
) -> Float[np.ndarray, "row pos"]:
    """`normalise` for many rows at once, each with its own scale (0 where the scale is <= 0)."""
    per_row = np.asarray(scale, dtype=np.float64)[:, None]
    safe = np.where(per_row > 0, per_row, 1.0)
    a = np.maximum(np.asarray(activations, dtype=np.float64), 0)
    return np.where(per_row > 0, np.minimum(np.floor(10 * a / safe + 1e-9), 10), 0.0)


def display_token(token: str) -> str:
    """A token as one line of a block: tabs and newlines made visible."""
    return (
        token.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def format_block(
    records: list[tuple[list[str], list[int] | None]],
    omit_zeros: bool = False,
    start_indices: list[int] | None = None,
) -> str:
    """Records as ``<start>``/``<end>`` blocks of ``token<TAB>value`` lines.

    A record's values may be None (every value ``unknown``); values before ``start_indices[i]``
    are shown as ``unknown``; with `omit_zeros`, lines whose value is 0 are dropped.

    >>> format_block([(["a", "b"], [0, 10])])
    '\\n<start>\\na\\t0\\nb\\t10\\n<end>\\n'
    """
    bodies = []
    for i, (tokens, values) in enumerate(records):
        first = 0 if start_indices is None else start_indices[i]
        lines = []
        for j, token in enumerate(tokens):
            value = None if values is None or j < first else int(values[j])
            if omit_zeros and value == 0:
                continue
            lines.append(f"{display_token(token)}\t{'unknown' if value is None else value}")
        bodies.append("\n".join(lines))
    return "\n<start>\n" + "\n<end>\n<start>\n".join(bodies) + "\n<end>\n"


def non_zero_proportion(values: list[list[int]]) -> float:
    flat = [v for record in values for v in record]
    return sum(1 for v in flat if v != 0) / max(len(flat), 1)
