"""N2G's pure parts against the worked examples of the method notes."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.n2g.engine import prune_starts, split, store_tokens
from dd_assets.methods.n2g.export import collapse, to_deepdecipher, to_dot, to_svg
from dd_assets.methods.n2g.fidelity import TokenLookup, firing_scores
from dd_assets.methods.n2g.lines import LineConfig, Sample, build_graph, sample_lines
from dd_assets.methods.n2g.similarity import similar_pairs
from dd_assets.methods.n2g.tokens import norm_token
from dd_assets.methods.n2g.trie import END, IGNORE, Element, PredictionTrie, VisualTrie


def _line(*tokens: str, end: float) -> list[Element]:
    first, *rest = tokens
    line = [Element(first, importance=1.0, activation=end, important=True, activator=True)]
    line += [
        Element(t, importance=0.9 if t != IGNORE else 0.1, important=t != IGNORE) for t in rest
    ]
    return [*line, Element(END, activation=end)]


@pytest.fixture
def worked_trie() -> PredictionTrie:
    trie = PredictionTrie(normalize=False)
    for line in (
        _line("B", "A", end=0.8),
        _line("B", IGNORE, "C", end=0.6),
        _line("B", "D", "E", end=0.9),
    ):
        trie.add_line(line)
    trie.merge_ignores()
    return trie


def test_ignore_merge_structure(worked_trie):
    b = worked_trie.root.children["B"]
    assert set(b.children) == {"A", IGNORE}  # D had no END of its own: generalised away
    assert b.children["A"].children[END].element.activation == pytest.approx(0.8)
    wildcard = b.children[IGNORE]
    assert set(wildcard.children) == {"C", "E"}
    assert wildcard.children["C"].children[END].element.activation == pytest.approx(0.6)
    assert wildcard.children["E"].children[END].element.activation == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("q A B", 0.8),
        ("C x B", 0.6),
        ("E D B", 0.9),
        ("E z B", 0.9),
        ("C A B", 0.8),  # the exact child is preferred; no backtracking into the wildcard
        ("x y B", 0.0),
        ("q A Q", 0.0),
    ],
)
def test_worked_predictions(worked_trie, text, expected):
    assert worked_trie.search(text.split()) == pytest.approx(expected)
    assert worked_trie.predict(text.split())[-1] == pytest.approx(expected)


def test_max_mode_takes_the_largest_match():
    trie = PredictionTrie(normalize=False)
    trie.add_line(_line("B", end=0.9))
    trie.add_line(_line("B", "A", end=0.6))
    trie.merge_ignores()
    assert trie.search(["A", "B"], "longest") == pytest.approx(0.6)
    assert trie.search(["A", "B"], "max") == pytest.approx(0.9)


def test_trie_json_round_trip(worked_trie):
    again = PredictionTrie.from_json(worked_trie.to_json(), normalize=False)
    for text in ("q A B", "C x B", "E z B", "x y B"):
        assert again.search(text.split()) == worked_trie.search(text.split())
    assert again.to_json() == worked_trie.to_json()


@pytest.mark.parametrize(
    ("token", "key"), [(" He", "he"), (" the", "the"), (" HTML", "HTML"), ("\n", "\n"), (".", ".")]
)
def test_token_normalisation(token, key):
    assert norm_token(token) == key
    assert norm_token(token, enabled=False) == token


def test_prune_candidate_lengths():
    assert [41 - s if s == 0 else 40 - s + 1 for s in prune_starts(40, 30, 5)] == [
        5,
        10,
        15,
        20,
        25,
        30,
    ]
    # pivot at index 12: 13 tokens including BOS, so the last candidate is the whole prefix
    assert [12 - s + 1 for s in prune_starts(12, 30, 5)] == [5, 10, 13]


def test_split_is_seeded_and_disjoint():
    train, test = split(20, 0.5, 0)
    assert len(train) == len(test) == 10
    assert not set(train) & set(test)
    assert split(20, 0.5, 0) == (train, test)
    assert split(2, 0.5, 0)[0] and split(2, 0.5, 0)[1]


def _sample(tokens, acts, importance) -> Sample:
    return Sample(
        tokens, np.array([t == "<s>" for t in tokens]), np.asarray(acts, np.float32), importance
    )


def test_lines_keep_distance_and_drop_leading_context():
    tokens = ["<s>", " x", " A", " y", " B"]
    imp = np.zeros((5, 5), dtype=np.float32)
    imp[2, 4] = 0.9  # A matters for B, two tokens back; y does not
    s = _sample(tokens, [0, 0, 0, 0, 0.9], imp)
    (line,) = sample_lines(s, [set()] * 5, LineConfig())
    assert [e.token for e in line] == ["b", IGNORE, "a", END]  # " B" is title-case: lowered
    assert line[-1].activation == pytest.approx(0.9)


def test_graph_from_samples_predicts_training_text():
    tokens = ["<s>", " the", " cat", " sat"]
    imp = np.zeros((4, 4), dtype=np.float32)
    imp[1, 2] = 0.95
    s = _sample(tokens, [0, 0.1, 1.0, 0.2], imp)
    graph = build_graph([[s]], LineConfig())
    pred = graph.prediction.predict(tokens)
    assert pred.tolist() == pytest.approx([0, 0, 1.0, 0])
    assert graph.prediction.predict(["<s>", " a", " cat"])[-1] == 0  # context required
    activating, important = store_tokens(graph.prediction)
    assert activating == {"cat": 1.0}
    assert important == {"the": pytest.approx(0.1)}


def test_visual_export_shapes():
    trie = VisualTrie()
    for line in (_line("B", "A", end=0.8), _line("B", IGNORE, "C", end=0.6)):
        trie.add_line(line)
    nodes = collapse(trie)
    assert [(n.depth, n.token) for n in nodes] == [(0, "B"), (1, "A"), (1, "C")]
    dd = to_deepdecipher(nodes)
    assert dd["subgraph_indices"] == [0, 1, 3]
    assert dd["graph"][0]["required"] == [1, 2]
    assert dd["graph"][0]["importance"] == pytest.approx((0.8 - 0.3) / 0.7, abs=0.01)
    dot = to_dot(nodes)
    assert "cluster_1" in dot and "0 -> 1" in dot and "0 -> 2" in dot
    svg = to_svg(nodes)
    assert svg.startswith("<svg") and svg.count('class="n2g-node') == 3


def test_firing_scores_edge_cases():
    real = np.array([0.9, 0.1, 0.7, 0.0])
    f = firing_scores(real, np.array([0.8, 0.6, 0.0, 0.0]))
    assert (f.precision, f.recall, f.f1) == (0.5, 0.5, 0.5)
    none = firing_scores(np.zeros(3), np.zeros(3))
    assert none.precision is None and none.recall == 1.0 and none.f1 == 0.0
    missed = firing_scores(np.array([1.0, 0.0]), np.zeros(2))
    assert missed.precision is None and missed.recall == 0.0
    wrong = firing_scores(np.zeros(2), np.ones(2))
    assert wrong.precision == 0.0 and wrong.f1 == 0.0


def test_token_lookup_baseline():
    lookup = TokenLookup().fit(
        [([" a", " b", " a"], np.array([0.2, 0.9, 0.6]), np.array([True, True, True]))]
    )
    assert lookup.predict([" a", " b", " c"]).tolist() == pytest.approx([0.6, 0.9, 0.0])


def test_similarity_worked_example_and_compat():
    activating = [{"a", "b"}, {"a"}, {"z"}]
    important = [{"c"}, {"c", "d"}, set()]
    pairs = similar_pairs(activating, important, threshold=0.4)
    got = {(int(s), int(t)): float(v) for s, t, v in zip(*vars(pairs).values(), strict=True)}
    assert got == {(0, 1): pytest.approx(1.0), (1, 0): pytest.approx(1.0)}
    compat = similar_pairs(activating, important, threshold=0.4, compat=True)
    # DeepDecipher's served value divides by the later neuron's sizes only: 2 / (1 + 2)
    assert compat.similarity.tolist() == pytest.approx([2 / 3, 2 / 3])


def test_similarity_blocks_match_brute_force():
    rng = np.random.default_rng(1)
    words = [f"t{i}" for i in range(12)]
    act = [set(rng.choice(words, rng.integers(0, 4), replace=False)) for _ in range(60)]
    imp = [set(rng.choice(words, rng.integers(0, 4), replace=False)) for _ in range(60)]
    pairs = similar_pairs(act, imp, threshold=0.4, block=7)
    got = {(int(s), int(t)): float(v) for s, t, v in zip(*vars(pairs).values(), strict=True)}
    want = {}
    for x in range(60):
        for y in range(60):
            d = min(len(act[x]), len(act[y])) + min(len(imp[x]), len(imp[y]))
            if x != y and d and (len(act[x] & act[y]) + len(imp[x] & imp[y])) / d >= 0.4:
                want[(x, y)] = (len(act[x] & act[y]) + len(imp[x] & imp[y])) / d
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v)
