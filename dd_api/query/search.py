"""Full-text search over a model's neuron explanations: an in-memory inverted index.

The index is built once per version of the ``explanations`` table (`DataStore.derived`) and
answers a query in well under a millisecond on 46k explanations: postings are numpy arrays, and
scoring is a BM25 sum done with `np.bincount`. Words are lowercase runs of letters and digits, so
``"def"`` matches the explanation ``tokens " def", "class"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from dd_api.query.errors import BadRequest, MissingData, echo
from dd_api.query.metadata import missing_tables
from dd_api.query.refs import ModelRef
from dd_api.query.schemas import ExplanationMatch, ExplanationSearch
from dd_api.query.store import DataStore
from dd_assets.tables import EXPLANATIONS

WORD = re.compile(r"[^\W_]+")
MAX_QUERY = 200
MAX_TERMS = 16
K1, B = 1.2, 0.75


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


@dataclass
class ExplanationIndex:
    layer: np.ndarray
    neuron: np.ndarray
    explanation: np.ndarray
    score: np.ndarray  # float64, NaN where undefined
    postings: dict[str, tuple[np.ndarray, np.ndarray]]  # word -> (rows, term frequencies)
    norm: np.ndarray  # BM25 length normalisation per row

    @classmethod
    def build(cls, frame: pl.DataFrame) -> ExplanationIndex:
        frame = frame.filter(pl.col("status") == "ok").sort("layer", "neuron")
        texts = frame["explanation"].to_list()
        rows: list[int] = []
        terms: list[str] = []
        lengths = np.zeros(len(texts))
        for i, text in enumerate(texts):
            ws = words(text)
            lengths[i] = len(ws)
            rows.extend([i] * len(ws))
            terms.extend(ws)
        postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if terms:
            counts = (
                pl.DataFrame({"term": terms, "row": np.asarray(rows, dtype=np.int64)})
                .group_by("term", "row")
                .len()
                .sort("term", "row")
                .group_by("term", maintain_order=True)
                .agg("row", "len")
            )
            for term, r, tf in counts.iter_rows():
                postings[term] = (np.asarray(r, dtype=np.int64), np.asarray(tf, dtype=np.float64))
        avg = lengths.mean() if len(lengths) else 1.0
        return cls(
            layer=frame["layer"].to_numpy(),
            neuron=frame["neuron"].to_numpy(),
            explanation=np.asarray(texts, dtype=object),
            score=frame["score"].fill_null(np.nan).to_numpy().astype(np.float64),
            postings=postings,
            norm=K1 * (1 - B + B * lengths / max(avg, 1e-9)),
        )

    def search(self, query: str, limit: int, offset: int) -> tuple[list[ExplanationMatch], int]:
        """Ranked matches (every query word must occur) and their total count."""
        terms = list(dict.fromkeys(words(query)))[:MAX_TERMS]
        n = len(self.layer)
        if not terms or n == 0:
            return [], 0
        relevance = np.zeros(n)
        matched = np.zeros(n, dtype=np.int64)
        for term in terms:
            hit = self.postings.get(term)
            if hit is None:
                return [], 0
            rows, tf = hit
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            relevance[rows] += idf * tf * (K1 + 1) / (tf + self.norm[rows])
            matched[rows] += 1
        candidates = np.flatnonzero(matched == len(terms))
        total = len(candidates)
        end = offset + limit
        if end < total:
            # Only rows that can reach the page need sorting: those at least as relevant as the
            # end-th best (ties included). Sorting all matches of a common word costs ~10x more.
            rel = relevance[candidates]
            cut = np.partition(rel, total - end)[total - end]
            candidates = candidates[rel >= cut]
        # Relevance first, then the better-scored explanation, then position in the model.
        score = np.nan_to_num(self.score[candidates], nan=-2.0)
        order = np.lexsort((candidates, -score, -relevance[candidates]))
        page = candidates[order[offset:end]]
        results = [
            ExplanationMatch(
                layer=int(self.layer[r]),
                neuron=int(self.neuron[r]),
                explanation=self.explanation[r],
                score=None if np.isnan(self.score[r]) else round(float(self.score[r]), 6),
                rank=offset + i + 1,
                relevance=round(float(relevance[r]), 6),
            )
            for i, r in enumerate(page.tolist())
        ]
        return results, total


def explanation_index(store: DataStore, model: str) -> ExplanationIndex:
    """The model's index, rebuilt only when the explanations table gets a new version."""
    return store.derived(
        "explanation_index",
        (EXPLANATIONS,),
        model,
        lambda: ExplanationIndex.build(store.frame(EXPLANATIONS, model)),
    )


def search(
    store: DataStore, ref: ModelRef, query: str, limit: int, offset: int
) -> ExplanationSearch:
    """Ranked explanations matching every word of `query`; BadRequest for an empty, over-long
    or wordless query, MissingData while the model has no explanations."""
    if len(query) > MAX_QUERY:
        raise BadRequest(f"query is too long: at most {MAX_QUERY} characters")
    if not query.strip():
        raise BadRequest("query q is empty")
    if not words(query):
        raise BadRequest(f"query {echo(query)} has no word to search for")
    missing = missing_tables(store, (EXPLANATIONS,), ref.name)
    if missing:
        raise MissingData(missing, f"no explanations for model {ref.name!r} yet")
    results, total = explanation_index(store, ref.name).search(query, limit, offset)
    return ExplanationSearch(data=results, total=total, query=query)
