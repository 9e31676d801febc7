"""The scoring protocol (pooled, top-only, random-only, score_status), random windows, token
classes and the offline fallback, with hand-built arrays and exact expected values."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.explain.offline import (
    FALLBACK_SCORER,
    NEVER_OCCUR,
    SCORER,
    offline_explanations,
)
from dd_assets.methods.explain.protocol import (
    CONSTANT_TRUE,
    NEVER_FIRES,
    NO_EXCERPTS,
    SCORED,
    protocol_scores,
    unscored,
)
from dd_assets.methods.explain.records import Excerpts, with_random_windows
from dd_assets.methods.explain.token_classes import (
    CLASSES,
    class_mean_prediction,
    token_class,
    token_classes,
)


def test_pooled_top_and_random_correlations_and_every_status():
    # neuron 0: 3 top tokens + 3 random tokens; 1: constant prediction; 2: constant truth;
    # 3: a single token; 4: nothing at all.
    neuron = np.array([0] * 6 + [1] * 4 + [2] * 3 + [3])
    is_random = np.array([0, 0, 0, 1, 1, 1] + [0, 0, 1, 1] + [0, 0, 1] + [0], dtype=bool)
    true = np.array([0.0, 2.0, 4.0, 0.0, 1.0, 0.0] + [0, 1, 2, 3] + [5, 5, 5] + [1.0])
    pred = np.array([0.0, 5.0, 9.0, 3.0, 0.0, 0.0] + [0, 0, 0, 0] + [1, 2, 3] + [1.0])
    s = protocol_scores(neuron, is_random, true, pred, 5, "my simulator is silent")
    assert s.pooled[0] == pytest.approx(np.corrcoef(true[:6], pred[:6])[0, 1])
    assert s.top[0] == pytest.approx(np.corrcoef(true[:3], pred[:3])[0, 1])
    assert s.random[0] == pytest.approx(np.corrcoef(true[3:6], pred[3:6])[0, 1])
    assert s.random[0] < 0 < s.top[0]  # the random half can disagree with the top half
    assert s.status.tolist() == [
        SCORED,
        unscored("my simulator is silent"),
        CONSTANT_TRUE,
        NO_EXCERPTS,
        NO_EXCERPTS,
    ]
    assert s.constant_prediction.tolist() == [False, True, False, False, False]
    assert s.value("pooled", 1) is None and np.isnan(s.pooled[1:]).all()
    with pytest.raises(ValueError, match="one value per scored token"):
        protocol_scores(neuron[:-1], is_random, true, pred, 5)


def _excerpts(neurons, explain, kind, doc, width=4, ids=None, acts=None):
    n = len(neurons)
    return Excerpts(
        neuron=np.asarray(neurons, dtype=np.int64),
        explain=np.asarray(explain, dtype=bool),
        kind=np.asarray(kind),
        rank=np.arange(n, dtype=np.int64),
        doc_index=np.asarray(doc, dtype=np.int64),
        start=np.ones(n, dtype=np.int64),
        token_ids=np.zeros((n, width), dtype=np.int64) if ids is None else np.asarray(ids),
        activations=np.zeros((n, width), dtype=np.float32) if acts is None else np.asarray(acts),
    )


def test_random_windows_replace_quantile_rows_reproducibly_and_skip_explain_documents():
    ex = _excerpts(
        neurons=[0, 0, 0, 1, 1, 1],
        explain=[1, 0, 0, 1, 0, 0],
        kind=["top", "top", "quantile", "top", "top", "quantile"],
        doc=[3, 4, 5, 6, 7, 8],
    )
    n_windows, width = 12, 6
    window_doc = np.arange(n_windows) + 1  # documents 1..12: 3 and 6 are explain documents
    window_ids = np.arange(n_windows * width).reshape(n_windows, width)
    window_acts = np.stack([window_ids * 1.0, -window_ids * 1.0])  # [neuron, window, pos]
    out = with_random_windows(
        ex, window_doc, np.arange(n_windows) * 10, window_ids, window_acts, per_neuron=5, seed=7
    )
    assert "quantile" not in out.kind.tolist()
    for n, sign in ((0, 1.0), (1, -1.0)):
        mine = out.take((out.neuron == n) & (out.kind == "random"))
        assert len(mine.doc_index) == 5 and len(set(mine.doc_index.tolist())) == 5
        explain_docs = out.doc_index[(out.neuron == n) & out.explain]
        assert not set(mine.doc_index.tolist()) & set(explain_docs.tolist())
        w = mine.doc_index - 1
        np.testing.assert_array_equal(mine.token_ids, window_ids[w, :4])  # cut to excerpt width
        np.testing.assert_array_equal(mine.activations, sign * window_ids[w, :4])
        np.testing.assert_array_equal(mine.start, w * 10)
        assert mine.rank.tolist() == [0, 1, 2, 3, 4]
    # Rows stay grouped: explain first, then top, then random, per neuron.
    assert out.neuron.tolist() == [0] * 7 + [1] * 7
    assert out.kind.tolist()[:7] == ["top", "top"] + ["random"] * 5
    again = with_random_windows(
        ex, window_doc, np.arange(n_windows) * 10, window_ids, window_acts, per_neuron=5, seed=7
    )
    np.testing.assert_array_equal(again.doc_index, out.doc_index)
    other = with_random_windows(
        ex, window_doc, np.arange(n_windows) * 10, window_ids, window_acts, per_neuron=5, seed=8
    )
    assert other.doc_index.tolist() != out.doc_index.tolist()
    with pytest.raises(ValueError, match="narrower"):
        with_random_windows(ex, window_doc, window_doc, window_ids[:, :3], window_acts[:, :, :3])


@pytest.mark.parametrize(
    ("token", "cls"),
    [("\n", "whitespace"), ("    ", "whitespace"), (" 42", "digits"), (")", "punctuation"),
     ("])", "punctuation"), (" def", "word"), ("_name", "word-piece"), ("ing", "word-piece"),
     ("", "other"), (" x=1", "other")],
)  # fmt: skip
def test_token_class(token, cls):
    assert CLASSES[token_class(token)] == cls


def test_class_mean_prediction_is_the_explain_mean_per_class():
    vocab = ["a", " b", "1", ")", "\n"]  # classes: word-piece, word, digits, punctuation, space
    ex = _excerpts(
        neurons=[0, 0],
        explain=[1, 0],
        kind=["top", "top"],
        doc=[1, 2],
        ids=[[0, 1, 3, 0], [0, 2, 3, 4]],
        acts=[[1.0, 2.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]],
    )
    pred = class_mean_prediction(ex, np.array([2.0]), token_classes(vocab))
    # explain split scaled 0-10 by its max 2.0: "a" -> 5 and 0 (mean 5/2), " b" -> 10, ")" -> 0;
    # digits and whitespace never occur there: the neuron's overall mean (15 / 4).
    np.testing.assert_allclose(pred, [[2.5, 3.75, 0.0, 3.75]])


def test_offline_fallback_scores_what_the_token_list_cannot_and_says_why():
    vocab = ["<bos>", " x", " y", "1", "2", ")"]
    # Neuron 0 fires on " x" in its explain excerpt; its score excerpts hold no " x" but digits
    # (which it also liked a little) and words: the lookup predicts 0 everywhere.
    # Neuron 1 never fires at all.
    ids = [[1, 3, 5, 2], [3, 2, 4, 2], [4, 5, 3, 2], [1, 3, 5, 2], [3, 2, 4, 2]]
    acts = [[4.0, 1.0, 0, 0], [1.0, 0.0, 1.2, 0.1], [0.9, 0.0, 1.0, 0.0], [0.0] * 4, [0.0] * 4]
    ex = _excerpts(
        neurons=[0, 0, 0, 1, 1],
        explain=[1, 0, 0, 1, 0],
        kind=["top", "top", "quantile", "top", "top"],
        doc=[1, 2, 3, 4, 5],
        ids=ids,
        acts=acts,
    )
    frame = offline_explanations(ex, vocab, range(3), max_tokens=1)
    rows = {r["neuron"]: r for r in frame.iter_rows(named=True)}
    assert rows[0]["explanation"].startswith('tokens " x"')
    assert rows[0]["scorer"] == FALLBACK_SCORER
    assert rows[0]["score_status"] == f"scored by fallback: {NEVER_OCCUR}"
    # Class means on the explain split, scaled by its max 4.0: words (" x" 10, " y" 0) 5,
    # digits ("1": floor(2.5)) 2, punctuation 0.
    true = np.array(acts[1] + acts[2])
    pred = np.array([2.0, 5.0, 2.0, 5.0, 2.0, 0.0, 2.0, 5.0])
    assert rows[0]["score"] == pytest.approx(np.corrcoef(true, pred)[0, 1])
    assert rows[0]["score_top"] == pytest.approx(np.corrcoef(true[:4], pred[:4])[0, 1])
    assert rows[0]["score_random"] == pytest.approx(np.corrcoef(true[4:], pred[4:])[0, 1])
    assert rows[0]["random_source"] == "quantile-bands"
    assert rows[1]["score"] is None and rows[1]["score_status"] == NEVER_FIRES
    assert rows[1]["scorer"] == SCORER
    assert rows[2]["score"] is None and rows[2]["score_status"] == NO_EXCERPTS
    assert set(frame["kind"]) == {"top-tokens"}
    # No row without a score and without a reason.
    for r in rows.values():
        assert (r["score"] is None) == r["score_status"].startswith("unscored:")
