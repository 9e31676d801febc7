"""Explanation vectors and hybrid ranking: token descriptions, embedding, reciprocal rank fusion."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.explain.semantic import (
    describe_token,
    embed_explanations,
    explanation_units,
    firing_tokens,
    hybrid_rank,
)
from dd_assets.methods.sentence_encoder import default_encoder


def test_token_descriptions_and_units():
    assert describe_token(")") == "closing parenthesis bracket"
    assert describe_token(" return") == "return"
    assert describe_token("\n\n") == "newline"
    text = 'tokens ")", " x" (often after "f"); promotes ":"'
    assert firing_tokens(text) == [")", " x"]
    assert firing_tokens('tokens "a\\"b"; promotes "c"') == ['a"b']
    assert explanation_units("top-tokens", text) == ["closing parenthesis bracket", "x"]
    assert explanation_units("llm", "closing brackets") == ["closing brackets"]
    assert explanation_units("top-tokens", "no positive activation") == ["no positive activation"]


def test_closing_brackets_finds_the_bracket_neuron():
    texts = [
        'tokens ")", "])" (often after "x")',
        'tokens " import", " from"',
        'tokens " 1", " 2", " 3"',
        "the keyword def where a function definition starts",
    ]
    vectors = embed_explanations(default_encoder(), ["top-tokens"] * 3 + ["llm"], texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = default_encoder().embed(["closing brackets"])[0]
    assert int(np.argmax(vectors @ query)) == 0


def test_reciprocal_rank_fusion_by_hand():
    bm25 = np.array([0.0, 2.0, 1.0, 0.0, 0.0])
    cosine = np.array([0.9, 0.1, 0.5, 0.8, 0.2])
    rows, fused = hybrid_rank(bm25, cosine, depth=3, k=1)
    # BM25 ranks: 1 -> 1, 2 -> 2; embedding ranks (top 3): 0 -> 1, 3 -> 2, 2 -> 3.
    expected = {0: 1 / 2, 1: 1 / 2, 2: 1 / 3 + 1 / 4, 3: 1 / 3}
    assert rows.tolist() == [2, 0, 1, 3]  # 0 and 1 tie: the higher cosine first
    assert fused.tolist() == pytest.approx([expected[r] for r in rows.tolist()])
    rows, _ = hybrid_rank(np.zeros(5), cosine, depth=0)
    assert rows.tolist() == []
