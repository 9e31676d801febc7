"""Embedding AUROC: the statistic against brute force, the window grid, and the scorer's statuses."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.explain.auroc import auroc, grouped_auroc
from dd_assets.methods.explain.embedding_score import (
    NEVER_FIRES,
    NO_NEGATIVES,
    NO_POSITIVES,
    NO_VECTOR,
    SCORER,
    embedding_auroc,
    layer_embedding_scores,
    per_neuron,
)
from dd_assets.methods.explain.windows import WindowGrid, WindowLookup, grid_windows


def brute_auroc(pos: list[float], neg: list[float]) -> float:
    """The definition: the share of (positive, negative) pairs ordered right, ties half."""
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize(
    ("pos", "neg", "want"),
    [
        ([0.9, 0.8], [0.1, 0.2, 0.3], 1.0),  # every positive above every negative
        ([0.1], [0.5, 0.6], 0.0),  # inverted
        ([0.4, 0.4], [0.4], 0.5),  # all tied: chance
        ([0.3, 0.7], [0.5], 0.5),  # one pair right, one wrong
        ([0.5, 0.9], [0.5, 0.1], 0.875),  # a tie counts half: (1 + 1 + 0.5 + 1) / 4
    ],
)
def test_auroc_known_cases(pos, neg, want):
    assert auroc(pos, neg) == pytest.approx(want)
    assert auroc(pos, neg) == pytest.approx(brute_auroc(pos, neg))


def test_auroc_is_undefined_without_positives_or_negatives():
    assert auroc([], [0.1]) is None and auroc([0.1], []) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_auroc_matches_brute_force_per_neuron(seed):
    rng = np.random.default_rng(seed)
    n, p, q = 40, 5, 30
    # Rounded values make ties common; masks leave some neurons without positives or negatives.
    pos = np.round(rng.normal(0.3, 0.2, (n, p)), 1)
    neg = np.round(rng.normal(0.1, 0.2, (n, q)), 1)
    pv = rng.random((n, p)) < 0.7
    nv = rng.random((n, q)) < 0.8
    pv[0] = False
    nv[1] = False
    got, n_pos, n_neg = grouped_auroc(pos, pv, neg, nv)
    for i in range(n):
        ps, ns = pos[i][pv[i]].tolist(), neg[i][nv[i]].tolist()
        assert (n_pos[i], n_neg[i]) == (len(ps), len(ns))
        if ps and ns:
            assert got[i] == pytest.approx(brute_auroc(ps, ns))
        else:
            assert np.isnan(got[i])


def test_grid_covers_every_token_and_places_peaks_after_their_context():
    grid = WindowGrid(length=32, stride=16, before=24)
    starts = grid.starts(128)
    assert starts.tolist() == [1, 17, 33, 49, 65, 81, 96]
    covered = np.zeros(128, bool)
    for s in starts:
        covered[s : s + 32] = True
    assert not covered[0] and covered[1:].all()  # BOS never, every other token at least once
    peaks = np.arange(1, 128)
    chosen = grid.peak_starts(peaks, 128)
    assert ((chosen <= peaks) & (peaks < chosen + 32)).all()  # the window holds its peak
    inside = peaks - chosen
    assert (inside[(peaks >= 17) & (peaks < 96)] >= 16).all()  # 16+ tokens of context before
    # Short documents: one window of all tokens after BOS.
    assert WindowGrid().starts(24).tolist() == [1] and WindowGrid().width(24) == 23
    assert WindowGrid().peak_starts(np.array([5, 23]), 24).tolist() == [1, 1]
    assert WindowGrid().span_starts(1, 23, 24).tolist() == [1]
    with pytest.raises(ValueError, match="before"):
        WindowGrid(length=8, before=8)


def test_span_windows_lie_inside_the_span():
    grid = WindowGrid(length=32, stride=16)
    for s in range(1, 128 - 64 + 1):
        got = grid.span_starts(s, 64, 128)
        assert len(got) >= 2
        assert ((got >= s) & (got + 32 <= s + 64)).all()


def test_grid_windows_and_lookup():
    tokens = [["<s>", "a", " b", "c", "\n", "d"], ["<s>", "x", "y", "z", " w", "!"]]
    grid = WindowGrid(length=3, stride=2, before=1)
    docs, starts, width, texts = grid_windows([7, 9], tokens, grid)
    assert width == 3 and starts.tolist() == [1, 3, 1, 3] and docs.tolist() == [7, 7, 9, 9]
    assert texts == ["a bc", "c\nd", "xyz", "z w!"]
    lookup = WindowLookup(docs, starts)
    assert lookup.rows(np.array([9, 7, 9, 8, 7]), np.array([3, 1, 2, 1, 99])).tolist() == [
        3, 0, -1, -1, -1,
    ]  # fmt: skip


def _unit(*rows: list[float]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_embedding_auroc_scores_and_says_why_not():
    windows = _unit([1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8], [-1, 0.1])
    explanation = _unit([1, 0], [1, 0], [1, 0], [1, 0], [0, 1])
    has = np.array([True, True, True, False, True])
    positive = np.array([[0, 1], [-1, -1], [0, 1], [0, -1], [0, 1]])
    fires = np.array([[True, True], [False, False], [False, False], [True, False], [True, True]])
    negative = np.array([2, 3, 4])
    excluded = np.zeros((5, 3), dtype=bool)
    excluded[4] = True  # every random window is one of neuron 4's own documents
    out = embedding_auroc(explanation, has, windows, positive, fires, negative, excluded)
    assert out["scorer"].to_list() == [SCORER] * 5
    assert out["score_status"].to_list() == [
        "scored", NO_POSITIVES, NEVER_FIRES, NO_VECTOR, NO_NEGATIVES,
    ]  # fmt: skip
    assert out["score"].to_list() == [1.0, None, None, None, None]
    assert out["positives"].to_list() == [2, 0, 0, 1, 2]
    assert out["negatives"].to_list() == [3, 3, 3, 3, 0]
    cos_pos = [1.0, 0.8]
    cos_neg = [0.0, 0.6, float(windows[4, 0])]
    assert out["mean_cosine_positive"][0] == round(np.mean(cos_pos), 3)
    assert out["mean_cosine_negative"][0] == pytest.approx(np.mean(cos_neg), abs=5e-4)
    assert out["mean_cosine_positive"][3] is None  # no vector: no cosine either


def test_per_neuron_pads_rows():
    got = per_neuron(np.array([1, 1, 3]), np.array([5, 6, 7]), 4, -1)
    assert got.tolist() == [[-1, -1], [5, 6], [-1, -1], [7, -1]]
    assert per_neuron(np.array([], np.int64), np.array([], np.int64), 2, -1).shape == (2, 0)


def test_layer_scores_use_the_held_out_tops_and_skip_own_documents():
    """Two neurons, documents of 8 tokens, a grid of 4-token windows every 2 tokens. Neuron 0's
    explanation points at windows of documents 1 and 3 (its held-out tops); neuron 1 never fires."""
    ctx, grid = 8, WindowGrid(length=4, stride=2, before=2)
    n_docs = 12
    starts = grid.starts(ctx)  # [1, 3, 4]
    window_doc = np.repeat(np.arange(n_docs), len(starts))
    window_start = np.tile(starts, n_docs)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(window_doc), 8)).astype(np.float32)
    target = np.zeros(8, np.float32)
    target[0] = 1.0
    vectors[:, 0] = -2.0  # every window points away from the explanation ...
    lookup = WindowLookup(window_doc, window_start)
    good = lookup.rows(np.array([1, 3]), grid.peak_starts(np.array([5, 2]), ctx))
    vectors[good, 0] = 5.0  # ... except the peak windows of the held-out top documents 1 and 3
    explain_doc_window = lookup.rows(np.array([0, 0, 0]), starts)
    vectors[explain_doc_window, 0] = 9.0  # an explain document: never a positive or negative
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Top ranks 0, 4 explain (docs 0, 2); ranks 2, 6 are held out (docs 1, 3).
    examples = {
        "neuron": np.array([0, 0, 0, 0, 1, 1]),
        "kind": np.array(["top"] * 6),
        "rank": np.array([0, 2, 4, 6, 0, 2]),
        "doc_index": np.array([0, 1, 2, 3, 4, 5]),
        "max_activating_token_index": np.array([3, 5, 6, 2, 1, 1]),
        "max_activation": np.array([2.0, 1.5, 1.0, 0.5, 0.0, -0.1]),
    }
    # The uniform sample: spans over documents 0 (an explain doc of neuron 0), 6, 7 and 8.
    spans = (np.array([0, 6, 7, 8]), np.array([1, 1, 3, 1]), np.array([7, 4, 4, 7]))
    out = layer_embedding_scores(
        2, ctx, examples, np.array([0, 1]), np.stack([target, target]),
        window_doc, window_start, vectors, spans, grid=grid,
    )  # fmt: skip
    row0, row1 = out.row(0, named=True), out.row(1, named=True)
    assert row0["positive_doc_indices"] == [1, 3] and row0["positives"] == 2
    # Document 0's windows are neuron 0's own (explain) document: left out of its negatives.
    assert row0["negatives"] == 1 + 1 + 3
    assert row0["score"] == 1.0 and row0["score_status"] == "scored"
    assert row1["score"] is None and row1["score_status"] == NEVER_FIRES
    assert row1["negatives"] == 3 + 1 + 1 + 3 and row1["positive_doc_indices"] == []
