"""The `explanations` asset on the tiny model: every neuron, offline, held-out, reproducible."""

from __future__ import annotations

import polars as pl

from dd_assets import storage
from dd_assets.tables import EXPLANATIONS, NEURON_EXAMPLES


def test_every_neuron_has_an_offline_explanation(tiny):
    df = storage.read(tiny.root, EXPLANATIONS, "tiny")
    assert df.height == 2 * 96
    assert df.select("layer", "neuron").n_unique() == 2 * 96
    assert set(df["status"]) == {"ok"}
    assert set(df["explainer"]) == {"offline-tokens-v1"}
    assert set(df["scorer"]) == {"token-lookup-v1"}
    assert set(df["simulator_mode"]) == {"offline"}
    assert (df["explanation"].str.len_chars() > 0).all()
    scores = df["score"].drop_nulls()
    # Undefined (null) where the token list never occurs in the held-out excerpts: tiny documents
    # are 24 tokens and a neuron has only two explain excerpts.
    assert scores.len() > 0.3 * df.height
    assert ((scores >= -1) & (scores <= 1)).all()


def test_scored_documents_are_disjoint_from_explained_ones(tiny):
    df = storage.read(tiny.root, EXPLANATIONS, "tiny")
    examples = storage.read(tiny.root, NEURON_EXAMPLES, "tiny")
    for row in df.iter_rows(named=True):
        explain, score = set(row["explain_doc_indices"]), set(row["score_doc_indices"])
        assert explain and score
        assert not explain & score
        mine = examples.filter(
            (pl.col("layer") == row["layer"]) & (pl.col("neuron") == row["neuron"])
        )
        top = mine.filter(pl.col("kind") == "top").sort("rank")["doc_index"].to_list()
        # Interleaved split: explain = top ranks 0, 4, ...; top scored = ranks 2, 6, ...
        assert row["explain_doc_indices"] == top[0::4]
        assert set(top[2::4]) <= score
        assert score <= set(mine["doc_index"].to_list())
