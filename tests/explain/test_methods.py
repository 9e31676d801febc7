"""Unit tests of the explainer's method code, with the worked numbers of methods.md §3 and §6."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dd_assets.methods.explain.offline import offline_explanations
from dd_assets.methods.explain.prompts import (
    WORKED_EXAMPLES,
    explanation_messages,
    parse_explanation,
    repeats_worked_example,
    simulation_messages,
)
from dd_assets.methods.explain.records import (
    SplitConfig,
    cut_excerpts,
    format_block,
    non_zero_proportion,
    normalise,
)
from dd_assets.methods.explain.scoring import correlation, grouped_correlation, pooled_score
from dd_assets.methods.explain.simulate import (
    LOGPROBS,
    SAMPLED,
    TokenLogprob,
    expected_value,
    parse_simulation,
)


@pytest.mark.parametrize(
    ("acts", "scale", "expected"),
    [
        ([-0.2, 0.0, 1.3, 2.6], 2.6, [0, 0, 5, 10]),
        ([1.0, 2.0], 0.0, [0, 0]),
        ([1.0, 2.0], -1.0, [0, 0]),
        ([5.0, 0.99], 1.0, [10, 9]),  # capped at 10
    ],
)
def test_normalise(acts, scale, expected):
    assert normalise(acts, scale).tolist() == expected


def test_record_block_format():
    assert format_block([(["a", "b"], [0, 10])]) == "\n<start>\na\t0\nb\t10\n<end>\n"
    two = format_block([(["a"], [1]), (["b\n"], None)])
    assert two == "\n<start>\na\t1\n<end>\n<start>\nb\\n\tunknown\n<end>\n"
    assert format_block([(["a", "b", "c"], [0, 3, 0])], omit_zeros=True) == (
        "\n<start>\nb\t3\n<end>\n"
    )
    assert "a\tunknown\nb\t3" in format_block([(["a", "b"], [1, 3])], start_indices=[1])
    assert non_zero_proportion([[0, 3], [0, 0]]) == 0.25


def test_expected_value_worked_example():
    lp = {"0": math.log(0.7), "1": math.log(0.2), "10": math.log(0.05), " the": math.log(0.05)}
    assert expected_value(lp) == pytest.approx((0 * 0.7 + 1 * 0.2 + 10 * 0.05) / 0.95)
    assert expected_value(lp) == pytest.approx(0.7368, abs=1e-4)
    assert expected_value({" 5": 0.0}) == 5.0  # leading space of a token is ignored
    assert expected_value({"unknown": 0.0, "11": -0.1}) is None


def test_split_indices_follow_the_interleaving():
    cfg = SplitConfig()
    assert cfg.explain_ranks() == [0, 4, 8, 12, 16]
    assert cfg.score_ranks() == [2, 6, 10, 14, 18]
    assert cfg.random_ranks() == [1, 4, 7, 10, 13]
    with pytest.raises(ValueError):
        SplitConfig(explain_offset=1, score_offset=5)


def test_correlation_is_pooled_not_averaged():
    true = [[0.0, 1.0, 2.0], [10.0, 10.5, 11.0]]
    pred = [[0, 1, 2], [0, 1, 2]]
    per_record = np.mean([correlation(t, p) for t, p in zip(true, pred, strict=True)])
    pooled = pooled_score(true, pred)
    assert per_record == pytest.approx(1.0)
    assert pooled == pytest.approx(np.corrcoef(np.concatenate(true), np.concatenate(pred))[0, 1])
    assert pooled < 0.5
    assert pooled_score([[1.0, 2.0, 3.0]], [[0, 0, 0]]) is None  # constant prediction
    assert pooled_score([], []) is None


def test_grouped_correlation_matches_numpy():
    rng = np.random.default_rng(1)
    group = rng.integers(0, 5, size=400)
    x = rng.normal(size=400) + 100.0  # a large offset must not hurt accuracy
    y = x * rng.normal(size=400)
    got = grouped_correlation(group, x, y, 6)
    for g in range(5):
        assert got[g] == pytest.approx(np.corrcoef(x[group == g], y[group == g])[0, 1])
    assert np.isnan(got[5])  # empty group


def test_parse_simulation_with_logprobs_and_sampled():
    top5 = {"5": math.log(0.5), "10": math.log(0.5)}
    tokens = [
        TokenLogprob("1", {}), TokenLogprob("\t", {}), TokenLogprob("0", {"0": 0.0}),
        TokenLogprob("\n", {}), TokenLogprob("3", {}), TokenLogprob("\t", {}),
        TokenLogprob("5", top5), TokenLogprob("\n", {}), TokenLogprob("2", {}),
        TokenLogprob("\t10", {"\t10": 0.0, "10": -0.1}),
    ]  # fmt: skip
    sim = parse_simulation("", tokens, 3)
    assert sim.mode == LOGPROBS and sim.missing == 0
    assert sim.values.tolist() == [0.0, 10.0, 7.5]  # lines matched by index, not position
    sampled = parse_simulation("1\t4\n2\tseven\n3\t12\n", None, 4)
    assert sampled.mode == SAMPLED and sampled.values.tolist() == [4, 0, 10, 0]
    assert sampled.missing == 1
    with pytest.raises(ValueError, match="malformed"):
        parse_simulation("I cannot help with that.", None, 3)


def test_prompts_structure_and_parsing():
    messages = explanation_messages([(["x", " y"], [0, 10])])
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert [m["content"] for m in messages[2:7:2]] == [f" {e}." for _, e in WORKED_EXAMPLES]
    target = messages[-1]["content"]
    assert "Neuron 4" in target and "x\t0\n y\t10" in target
    assert target.endswith("the main thing this neuron does is find")
    assert "zeros left out" not in target  # half the values are non-zero: not sparse
    sparse = explanation_messages([(list("abcdefghij"), [0] * 9 + [7])])[-1]["content"]
    assert "zeros left out:\n<start>\nj\t7\n<end>" in sparse
    assert parse_explanation(" words about the weather.") == "words about the weather"
    assert repeats_worked_example(f"{WORKED_EXAMPLES[1][1]}, mostly")
    assert not repeats_worked_example("words about the weather")
    assert parse_explanation("the main thing this neuron does is find dates.\nmore") == "dates"
    with pytest.raises(ValueError):
        parse_explanation("  ")
    sim = simulation_messages("dates", ["a", "\tb"])[-1]["content"]
    assert "1\ta\n2\t\\tb" in sim and "tokens 1 to 2" in sim


def _layer(n_neurons=3, top_k=20, quantile=8, ctx=100, docs=60, seed=0):
    """Examples of a synthetic layer: neuron n fires on token id 10 + n."""
    rng = np.random.default_rng(seed)
    doc_ids = rng.integers(1, 40, size=(docs, ctx))
    doc_ids[:, 0] = 0
    rows = []
    for n in range(n_neurons):
        chosen = rng.choice(docs, size=top_k + quantile, replace=False)
        for i, d in enumerate(chosen):
            kind = "top" if i < top_k else "quantile"
            acts = np.where(doc_ids[d] == 10 + n, 3.0, 0.0) + rng.normal(0, 0.05, ctx)
            rows.append((n, kind, i if kind == "top" else i - top_k, d, acts))
    n, kind, rank, doc, acts = zip(*rows, strict=True)
    acts = np.stack(acts)
    return dict(
        neuron=np.asarray(n), kind=np.asarray(kind), rank=np.asarray(rank),
        doc_index=np.asarray(doc), activations=acts, max_token=acts[:, 1:].argmax(1) + 1,
        doc_token_ids=doc_ids,
    )  # fmt: skip


def test_excerpts_are_windows_around_the_max_and_splits_are_disjoint():
    layer = _layer()
    # A quantile sample that is also an explain document must not be scored.
    layer["doc_index"][20] = layer["doc_index"][0]
    ex = cut_excerpts(**layer)
    assert ex.width == 64
    assert (ex.start >= 1).all() and (ex.start + 64 <= 100).all()
    for n in range(3):
        explain = ex.doc_indices(n, True)
        score = ex.doc_indices(n, False)
        assert not set(explain) & set(score)
        assert len(explain) == 5
    top = ex.explain | (ex.kind == "top")
    rows = np.flatnonzero(top)
    for r in rows:  # the max token sits 48 tokens in, unless clipped by the document edges
        src = np.flatnonzero(
            (layer["neuron"] == ex.neuron[r]) & (layer["doc_index"] == ex.doc_index[r])
        )[0]
        m = layer["max_token"][src]
        assert ex.start[r] == min(max(m - 48, 1), 100 - 64)
        np.testing.assert_allclose(
            ex.activations[r], layer["activations"][src][ex.start[r] : ex.start[r] + 64], rtol=1e-6
        )
    assert 20 not in np.flatnonzero(np.isin(ex.doc_index, layer["doc_index"][0]) & ~ex.explain)


def test_offline_explainer_finds_the_token_and_scores_well():
    layer = _layer()
    ex = cut_excerpts(**layer)
    vocab = [f"t{i}" for i in range(40)]
    frame = offline_explanations(ex, vocab, range(4), output_tokens={0: ["a", "b", "c", "d"]})
    rows = {r["neuron"]: r for r in frame.iter_rows(named=True)}
    for n in range(3):
        assert f'"t{10 + n}"' in rows[n]["explanation"]
        assert rows[n]["score"] > 0.95
        assert rows[n]["explainer"] == "offline-tokens-v1"
        assert rows[n]["scorer"] == "token-lookup-v1"
        assert not set(rows[n]["explain_doc_indices"]) & set(rows[n]["score_doc_indices"])
    assert rows[0]["explanation"].endswith('promotes "a", "b", "c"')
    # Neuron 3 has no examples at all: an honest record, no score.
    assert rows[3]["score"] is None and rows[3]["explain_doc_indices"] == []


def test_offline_scorer_accepts_an_injected_predictor():
    ex = cut_excerpts(**_layer())
    vocab = [f"t{i}" for i in range(40)]
    seen = []

    def predictor_for(n):
        if n != 1:
            return None

        def predict(tokens):
            seen.append(len(tokens))
            return np.asarray([1.0 if t == "t11" else 0.0 for t in tokens])

        return predict

    frame = offline_explanations(ex, vocab, range(3), predictor_for=predictor_for)
    assert frame["scorer"].to_list() == ["token-lookup-v1", "n2g", "token-lookup-v1"]
    assert frame["score"][1] > 0.95 and set(seen) == {64}
    bad = offline_explanations  # a predictor with the wrong length is refused
    with pytest.raises(ValueError, match="shape"):
        bad(ex, vocab, range(3), predictor_for=lambda n: lambda tokens: np.zeros(3))
