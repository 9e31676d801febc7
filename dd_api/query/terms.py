"""The token-search query grammar shared by the Neuron2Graph index and the whole-model index:
``type:token[,type:token...]``; a term's type names the kinds it unites (``any`` = all of them),
terms intersect. Each index brings its kinds and how it normalizes a token."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dd_api.query.errors import BadRequest, echo

MAX_TERMS = 16


@dataclass(frozen=True)
class Term:
    kinds: tuple[str, ...]
    token: str


def parse_terms(
    query: str | None, kinds: tuple[str, ...], grammar: str, key: Callable[[str], str]
) -> list[Term]:
    """Terms of `query` split at unescaped commas, tokens through `key`; BadRequest stating
    `grammar` for an empty query, an unknown type or an empty token."""
    if query is None or not query.strip():
        raise BadRequest(f"query is empty; {grammar}")
    parts = re.split(r"(?<!\\),", query)
    if len(parts) > MAX_TERMS:
        raise BadRequest(f"at most {MAX_TERMS} terms per query, got {len(parts)}")
    terms = []
    for part in parts:
        kind, sep, token = part.partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in ("any", *kinds):
            raise BadRequest(f"malformed term {echo(part)}: {grammar}")
        token = key(token)
        if not token:
            raise BadRequest(f"term {echo(part)} has an empty token: {grammar}")
        terms.append(Term(kinds if kind == "any" else (kind,), token))
    return terms
