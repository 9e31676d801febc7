r"""Token search over every neuron: the whole-model ``token_index`` (examples and N2G graphs).

DeepDecipher's grammar, one type more: ``type:token[,type:token...]`` with type ``activating``,
``negative``, ``important`` or ``any`` (all three); a term matches the union of its types, terms
intersect. Tokens are matched trimmed and lower-cased, except whitespace-only tokens, which match
as they are: write a newline ``\n``, a tab ``\t``, a comma inside a token ``\,``, a backslash ``\\``.
Hits are ranked by their strongest matched activation (a fraction of the neuron's dataset max, or of
its min for ``negative``; important-only matches rank after), then by (layer, neuron); each hit
lists the entries it matched with their ``source`` (``examples``, ``graph`` or ``both``).

The index is three flat arrays sorted by (token, kind) plus a dict of slices, built once per table
version: a term is a slice, a query a few ``numpy`` set operations, whatever the model's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from dd_api.query.errors import MissingData
from dd_api.query.metadata import missing_tables
from dd_api.query.refs import ModelRef
from dd_api.query.schemas import IndexEntry, ModelTokenMatch, ModelTokenSearch
from dd_api.query.store import DataStore
from dd_api.query.terms import Term, parse_terms
from dd_assets.methods.token_index import index_key
from dd_assets.tables import TOKEN_INDEX

KINDS = ("activating", "negative", "important")
TYPES = ("any", *KINDS)
SOURCES = ("examples", "graph", "both")
GRAMMAR = (
    "expected type:token[,type:token...] with type one of any, activating, negative, important "
    "(write a newline as \\n, a tab as \\t, a comma as \\,, a backslash as \\\\)"
)
_ESCAPES = {"n": "\n", "t": "\t", ",": ",", "\\": "\\"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def parse_query(query: str | None) -> list[Term]:
    """``any:the,negative:\\n`` -> terms; BadRequest stating the grammar for anything else."""
    return parse_terms(query, KINDS, GRAMMAR, lambda t: index_key(_unescape(t)) if t else "")


@dataclass(frozen=True)
class TokenIndex:
    layer_size: int
    slices: dict[tuple[str, str], tuple[int, int]]  # (token, kind) -> rows
    fid: np.ndarray  # int64 flat neuron id = layer * layer_size + neuron
    activation: np.ndarray  # float32; nan for important entries
    source: np.ndarray  # int8 index into SOURCES


def build_index(df: pl.DataFrame, layer_size: int) -> TokenIndex:
    df = df.sort("token", "kind", "layer", "neuron")
    first = df.select(pl.struct("token", "kind").is_first_distinct())
    starts = np.flatnonzero(first.to_series().to_numpy())
    ends = np.append(starts[1:], df.height)
    # Strings only at the slice starts: the whole columns as Python lists would be ~2.3 M
    # objects for SmolLM2's 1.17 M rows.
    tokens, kinds = df["token"].gather(starts).to_list(), df["kind"].gather(starts).to_list()
    slices = {
        (t, k): (int(s), int(e)) for t, k, s, e in zip(tokens, kinds, starts, ends, strict=True)
    }
    return TokenIndex(
        layer_size,
        slices,
        (df["layer"].cast(pl.Int64) * layer_size + df["neuron"].cast(pl.Int64)).to_numpy(),
        df["activation"].fill_null(float("nan")).to_numpy().astype(np.float32),
        df["source"].replace_strict(SOURCES, list(range(3)), return_dtype=pl.Int8).to_numpy(),
    )


def token_index(store: DataStore, ref: ModelRef) -> TokenIndex:
    return store.derived(
        "token_index",
        (TOKEN_INDEX,),
        ref.name,
        # Scanned, not cached as a partition: only the index's arrays stay in memory.
        lambda: build_index(store.scan(TOKEN_INDEX, ref.name, lambda rows: rows), ref.layer_size),
    )


def _term_rows(index: TokenIndex, term: Term) -> list[tuple[str, int, int]]:
    return [
        (kind, *index.slices[(term.token, kind)])
        for kind in term.kinds
        if (term.token, kind) in index.slices
    ]


def _term_scores(index: TokenIndex, term: Term) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique neuron ids, best score) of one term; important-only scores -1.

    Each (token, kind) slice is already sorted by neuron (the table's sort order), so a stable
    sort of their concatenation only merges a few sorted runs.
    """
    fids, scores = [], []
    for kind, lo, hi in _term_rows(index, term):
        fids.append(index.fid[lo:hi])
        act = index.activation[lo:hi]
        scores.append(np.full(hi - lo, -1.0, np.float32) if kind == "important" else act)
    if not fids:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    f, s = np.concatenate(fids), np.concatenate(scores)
    order = np.argsort(f, kind="stable")
    f, s = f[order], s[order]
    first = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    return f[first], np.maximum.reduceat(s, first) if len(f) else s


def _page(fids: np.ndarray, scores: np.ndarray, offset: int, limit: int) -> np.ndarray:
    """Positions of one page of matches, best score first, ties by neuron id. Only the matches
    that can reach the page are sorted (a common token matches tens of thousands of neurons)."""
    end = offset + limit
    candidates = np.arange(len(fids))
    if end < len(fids):
        cut = np.partition(scores, len(fids) - end)[len(fids) - end]
        candidates = np.flatnonzero(scores >= cut)
    order = np.lexsort((fids[candidates], -scores[candidates]))
    return candidates[order][offset:end]


def _entries(index: TokenIndex, slices: list[tuple[str, str, int, int]], fid: int) -> list:
    """What neuron `fid` matched: its entries in each (token, kind) slice, found by bisection."""
    out = []
    for token, kind, lo, hi in slices:
        seg = index.fid[lo:hi]
        a, b = np.searchsorted(seg, fid, "left"), np.searchsorted(seg, fid, "right")
        for r in range(lo + int(a), lo + int(b)):
            act = float(index.activation[r])
            out.append(
                IndexEntry(
                    token=token,
                    kind=kind,
                    source=SOURCES[int(index.source[r])],
                    activation=None if np.isnan(act) else round(act, 4),
                )
            )
    return out


def search(
    store: DataStore, ref: ModelRef, query: str | None, limit: int = 100, offset: int = 0
) -> ModelTokenSearch:
    """Neurons matching every term, strongest first, with what each matched and where from;
    MissingData while the model has no token index."""
    terms = parse_query(query)  # a malformed query is a 400 even before the index exists
    missing = missing_tables(store, (TOKEN_INDEX,), ref.name)
    if missing:
        raise MissingData(missing, f"no whole-model token index for model {ref.name!r} yet")
    index = token_index(store, ref)
    fids, scores = _term_scores(index, terms[0])
    for term in terms[1:]:
        f2, s2 = _term_scores(index, term)
        fids, i1, i2 = np.intersect1d(fids, f2, assume_unique=True, return_indices=True)
        scores = np.maximum(scores[i1], s2[i2])
    slices = [(t.token, kind, lo, hi) for t in terms for kind, lo, hi in _term_rows(index, t)]
    data = [
        ModelTokenMatch(
            layer=int(fids[i]) // index.layer_size,
            neuron=int(fids[i]) % index.layer_size,
            activation=round(float(scores[i]), 4) if scores[i] >= 0 else None,
            matches=_entries(index, slices, int(fids[i])),
        )
        for i in _page(fids, scores, offset, limit).tolist()
    ]
    canonical = ",".join(
        f"{'any' if len(t.kinds) == len(KINDS) else t.kinds[0]}:{t.token}" for t in terms
    )
    return ModelTokenSearch(data=data, total=int(len(fids)), query=canonical)
