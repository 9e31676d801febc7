"""Per-scorer summaries: counts, unscored reasons, quartiles; two scorers never pooled."""

from __future__ import annotations

import polars as pl
import pytest

from dd_assets.methods.explain.summary import scorer_summaries


def test_each_scorer_is_summarised_on_its_own_with_its_unscored_rows():
    frame = pl.DataFrame(
        {
            "scorer": ["lookup"] * 5 + ["llm-x"] * 2,
            "kind": ["top-tokens"] * 5 + ["llm"] * 2,
            "score": [0.1, 0.9, 0.5, None, None, 0.85, None],
            "score_status": ["scored"] * 3
            + ["unscored: a", "unscored: b"]
            + ["scored", "unscored: a"],
            "score_top": [0.2, 0.8, 0.6, None, None, 0.9, None],
            "score_random": [None, 0.4, 0.2, None, None, 0.1, None],
        }
    )
    lookup, llm = scorer_summaries(frame)
    assert lookup["scorer"] == "lookup" and lookup["kind"] == ["top-tokens"]
    assert (lookup["count"], lookup["scored"], lookup["unscored"]) == (5, 3, 2)
    assert lookup["mean_score"] == pytest.approx(0.5)
    assert lookup["quartiles"] == pytest.approx([0.3, 0.5, 0.7])
    assert lookup["share_at_least_0_8"] == pytest.approx(1 / 3)
    assert lookup["mean_score_top"] == pytest.approx(1.6 / 3)
    assert lookup["mean_score_random"] == pytest.approx(0.3)
    assert lookup["unscored_reasons"] == {"unscored: a": 1, "unscored: b": 1}
    assert llm["mean_score"] == pytest.approx(0.85) and llm["unscored"] == 1
    assert llm["share_at_least_0_8"] == 1.0
    empty = scorer_summaries(
        frame.filter(pl.col("score").is_null() & (pl.col("scorer") == "llm-x"))
    )
    assert empty[0]["mean_score"] is None and empty[0]["quartiles"] is None
