"""Explanation vectors for semantic search (all-MiniLM-L6-v2, `sentence_encoder`).

A language-model explanation is prose and is embedded as it is. An offline (``top-tokens``)
explanation is a list of quoted tokens, which an encoder reads poorly (``")"`` says nothing about
brackets) and which would cost a full encoder pass per neuron (46,080 of them, about 0.8 GFLOP
each). Each of its firing tokens is therefore described in words (``")"`` -> "closing parenthesis
bracket"), every distinct description is embedded once, and the explanation's vector is the
normalised mean of its tokens' vectors. A query is embedded as it is; cosine similarity is the dot
product of unit vectors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
from jaxtyping import Float

from dd_assets.methods.sentence_encoder import SentenceEncoder

TOP_TOKENS = "top-tokens"
SYMBOLS = {
    "(": "opening parenthesis bracket", ")": "closing parenthesis bracket",
    "[": "opening square bracket", "]": "closing square bracket",
    "{": "opening curly brace bracket", "}": "closing curly brace bracket",
    "<": "less than sign", ">": "greater than sign", ":": "colon", ";": "semicolon",
    ",": "comma", ".": "period dot", "=": "equals sign", "+": "plus sign", "-": "minus hyphen",
    "*": "asterisk star", "/": "slash", "\\": "backslash", "_": "underscore",
    '"': "double quote", "'": "single quote", "`": "backtick", "#": "hash comment sign",
    "@": "at sign decorator", "!": "exclamation mark", "?": "question mark", "%": "percent sign",
    "&": "ampersand", "|": "vertical bar pipe", "^": "caret", "~": "tilde", "$": "dollar sign",
}  # fmt: skip
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def describe_token(token: str) -> str:
    """A token in words, for the encoder.

    >>> [describe_token(t) for t in ['")', " def", "\\n", "    "]]
    ['double quote closing parenthesis bracket', 'def', 'newline', 'spaces indentation']
    """
    stripped = token.strip()
    if not stripped:
        if "\n" in token:
            return "newline"
        return "tab" if "\t" in token else "spaces indentation"
    if all(not c.isalnum() and not c.isspace() for c in stripped):
        return " ".join(SYMBOLS.get(c, c) for c in stripped)
    return stripped


def firing_tokens(explanation: str) -> list[str]:
    """The quoted tokens of a top-tokens explanation's first clause (``tokens "a", "b"``)."""
    head = re.split(r" \(often after |; ", explanation, maxsplit=1)[0]
    return [json.loads(q) for q in _QUOTED.findall(head)]


def explanation_units(kind: str, explanation: str) -> list[str]:
    """The texts whose vectors make up an explanation's vector."""
    if kind == TOP_TOKENS:
        tokens = firing_tokens(explanation)
        if tokens:
            return [describe_token(t) for t in tokens]
    return [explanation]


def token_descriptions(tokens: Sequence[str]) -> list[str]:
    """The distinct descriptions of `tokens`, sorted: what a model's top-tokens explanations are
    made of (their firing tokens come from the dataset), embedded once for every layer."""
    return sorted({describe_token(t) for t in tokens})


def embed_explanations(
    encoder: SentenceEncoder,
    kinds: Sequence[str],
    explanations: Sequence[str],
    known: dict[str, np.ndarray] | None = None,
) -> Float[np.ndarray, "row dim"]:
    """One unit vector per explanation; each distinct unit text is embedded once, and not at all
    if `known` (e.g. the model's token description vectors) already holds its vector."""
    units = [explanation_units(k, e) for k, e in zip(kinds, explanations, strict=True)]
    # The layers of a model share almost all token descriptions (SmolLM2: 5,376 distinct units
    # over 46,080 explanations, against ~1,900 per layer).
    memo = encoder.memo
    if known:
        memo.update(known)
    missing = sorted({u for us in units for u in us} - memo.keys())
    memo.update(zip(missing, encoder.embed(missing), strict=True))
    out = np.zeros((len(units), encoder.dim), dtype=np.float32)
    for r, us in enumerate(units):
        v = np.mean([memo[u] for u in us], axis=0)
        out[r] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
EMBEDDING_DEPTH = 100  # nearest explanations by embedding that take part in the fusion


def hybrid_rank(
    bm25: Float[np.ndarray, " row"],
    cosine: Float[np.ndarray, " row"],
    depth: int = EMBEDDING_DEPTH,
    k: int = RRF_K,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ranked by reciprocal rank fusion of a BM25 ranking and an embedding ranking.

    Each row scores ``1 / (k + rank)`` in each list it is part of (ranks from 1): BM25 lists the
    rows with a positive BM25 score, the embedding list the `depth` rows most similar to the
    query. Fusing ranks, not raw scores, needs no calibration between the two. Ties fall to
    the higher cosine, then the lower row. Returns (rows, fused scores), best first.
    """
    bm25 = np.asarray(bm25, dtype=np.float64)
    cosine = np.asarray(cosine, dtype=np.float64)
    n = len(cosine)
    fused = np.zeros(n)
    matched = np.flatnonzero(bm25 > 0)
    if len(matched):
        order = matched[np.lexsort((matched, -bm25[matched]))]
        fused[order] += 1.0 / (k + np.arange(1, len(order) + 1))
    d = min(depth, n)
    if d:
        near = np.argpartition(-cosine, d - 1)[:d] if d < n else np.arange(n)
        near = near[np.lexsort((near, -cosine[near]))]
        fused[near] += 1.0 / (k + np.arange(1, d + 1))
    rows = np.flatnonzero(fused > 0)
    rows = rows[np.lexsort((rows, -cosine[rows], -fused[rows]))]
    return rows, fused[rows]
