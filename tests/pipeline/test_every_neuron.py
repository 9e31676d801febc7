"""Issue 11 on the tiny model's real tables: both polarities, the activation sample, co-activation
similarity, the whole-model token index and the N2G sample's fidelity."""

from __future__ import annotations

import numpy as np
import polars as pl

from dd_assets import storage
from dd_assets.methods.coactivation import METHOD
from dd_assets.methods.token_index import activation_matrix, index_key
from dd_assets.tables import (
    ACTIVATION_SAMPLE,
    ACTIVATION_SAMPLE_WINDOWS,
    DATASET_TOKENS,
    MODEL_METADATA,
    N2G_FIDELITY,
    N2G_GRAPHS,
    NEURON_COACTIVATION,
    NEURON_EXAMPLES,
    NEURON_STATS,
    TOKEN_INDEX,
)

N_LAYERS, D_MLP = 2, 96


def _sample_matrix(root: str) -> tuple[np.ndarray, pl.DataFrame]:
    sample = storage.read(root, ACTIVATION_SAMPLE, "tiny").sort("layer", "neuron")
    return np.asarray(sample["activations"].to_list(), dtype=np.float64).T, sample


def test_activation_sample_is_the_served_windows(tiny):
    x, sample = _sample_matrix(tiny.root)
    assert sample.height == N_LAYERS * D_MLP
    windows = storage.read(tiny.root, ACTIVATION_SAMPLE_WINDOWS, "tiny").sort("window")
    assert x.shape[0] == int(windows["length"].sum())
    assert (windows["start"] >= 1).all() and windows["doc_index"].n_unique() == windows.height
    # A window that is also someone's top example carries the same activations there.
    ex = storage.read(tiny.root, NEURON_EXAMPLES, "tiny").filter(pl.col("kind") == "top")
    w = windows.row(0, named=True)
    hit = ex.filter(pl.col("doc_index") == w["doc_index"]).row(0, named=True)
    col = sample.with_row_index().filter(
        (pl.col("layer") == hit["layer"]) & (pl.col("neuron") == hit["neuron"])
    )["index"][0]
    served = np.asarray(hit["activations"][w["start"] : w["start"] + w["length"]])
    np.testing.assert_allclose(x[: w["length"], col], served, atol=1e-6)


def test_coactivation_equals_brute_force_on_the_tiny_model(tiny):
    x, sample = _sample_matrix(tiny.root)
    c = np.corrcoef(x, rowvar=False)
    np.fill_diagonal(c, 0.0)
    sim = storage.read(tiny.root, NEURON_COACTIVATION, "tiny")
    assert sim["method"].unique().to_list() == [METHOD]
    assert sim["sample_positions"].unique().to_list() == [x.shape[0]]
    flat = {(r["layer"], r["neuron"]): i for i, r in enumerate(sample.iter_rows(named=True))}
    per_neuron = sim.group_by("layer", "neuron").len()
    assert per_neuron.height == N_LAYERS * D_MLP and (per_neuron["len"] == 10).all()
    for row in sim.iter_rows(named=True):
        i, j = flat[(row["layer"], row["neuron"])], flat[(row["other_layer"], row["other_neuron"])]
        assert row["correlation"] == np.float32(row["correlation"])
        np.testing.assert_allclose(row["correlation"], c[i, j], atol=1e-5)
        tenth = np.sort(np.abs(c[i]))[-10]
        assert abs(c[i, j]) >= tenth - 1e-5  # among the 10 strongest, whichever layer
    assert (sim["layer"] != sim["other_layer"]).any()  # across layers


def test_token_index_reaches_every_firing_neuron(tiny):
    index = storage.read(tiny.root, TOKEN_INDEX, "tiny")
    stats = storage.read(tiny.root, NEURON_STATS, "tiny")
    ex = storage.read(tiny.root, NEURON_EXAMPLES, "tiny").join(stats, on=["layer", "neuron"])
    tokens = storage.read(tiny.root, DATASET_TOKENS, "tiny").sort("doc_index")["tokens"].to_list()
    # Recompute the activating entries of every neuron by hand from its top examples.
    expected = set()
    for row in ex.filter(pl.col("kind") == "top").iter_rows(named=True):
        for p, a in enumerate(row["activations"]):
            if p and row["max"] > 0 and a >= 0.5 * row["max"]:
                expected.add((index_key(tokens[row["doc_index"]][p]), row["layer"], row["neuron"]))
    negative = set()
    for row in ex.filter(pl.col("kind") == "bottom").iter_rows(named=True):
        for p, a in enumerate(row["activations"]):
            if p and row["min"] < 0 and a <= 0.5 * row["min"]:
                negative.add((index_key(tokens[row["doc_index"]][p]), row["layer"], row["neuron"]))
    from_examples = index.filter(pl.col("source") != "graph")
    got = {
        kind: set(
            from_examples.filter(pl.col("kind") == kind)
            .select("token", "layer", "neuron")
            .iter_rows()
        )
        for kind in ("activating", "negative")
    }
    assert got["activating"] == expected and got["negative"] == negative
    firing = {(layer, neuron) for _, layer, neuron in expected}
    assert len(firing) == N_LAYERS * D_MLP or len(firing) == stats.filter(pl.col("max") > 0).height
    assert index.filter(pl.col("kind") == "negative")["activation"].min() >= 0.5 - 1e-6
    assert set(index["source"].unique()) <= {"examples", "graph", "both"}
    assert (
        index.filter(pl.col("source") == "both").height > 0
    )  # graphs and examples agree somewhere
    assert index.filter(pl.col("kind") == "important")["source"].unique().to_list() == ["graph"]
    # Whitespace and punctuation tokens are searchable under their own strings.
    keys = set(index["token"].to_list())
    assert "\n" in keys or " " in keys
    assert "" not in keys


def test_n2g_fidelity_per_layer_and_model(tiny):
    graphs = storage.read(tiny.root, N2G_GRAPHS, "tiny")
    assert set(graphs["sample"].unique()) <= {"top", "random"}
    fid = storage.read(tiny.root, N2G_FIDELITY, "tiny")
    model_row = fid.filter(pl.col("layer").is_null() & (pl.col("sample") == "top")).row(
        0, named=True
    )
    defined = graphs.filter(pl.col("f1").is_not_null() & pl.col("baseline_f1").is_not_null())
    assert model_row["neurons"] == defined.height
    np.testing.assert_allclose(model_row["f1_mean"], defined["f1"].mean())
    assert model_row["f1_ci_low"] <= model_row["f1_mean"] <= model_row["f1_ci_high"]
    assert fid.filter(pl.col("layer").is_not_null()).height >= N_LAYERS


def test_metadata_says_whether_activations_can_be_negative(tiny):
    meta = storage.read(tiny.root, MODEL_METADATA, "tiny").row(0, named=True)
    assert meta["nonnegative"] is False  # gelu


def test_n2g_sample_is_top_plus_seeded_random_live_neurons():
    from dd_assets.assets.n2g import neuron_sample

    stats = pl.DataFrame({"neuron": list(range(20)), "max": [float(i) - 3 for i in range(20)]})
    chosen = neuron_sample(stats, top=3, random=4, seed=7, layer=2)
    assert [n for n, s in chosen.items() if s == "top"] == [19, 18, 17]
    randoms = [n for n, s in chosen.items() if s == "random"]
    assert len(randoms) == 4 and all(4 <= n < 17 for n in randoms)  # live (max > 0), not top
    assert chosen == neuron_sample(stats, top=3, random=4, seed=7, layer=2)
    assert chosen != neuron_sample(stats, top=3, random=4, seed=7, layer=3)


def test_activation_matrix_equals_the_python_lists():
    """The token index reads activations straight from the column: same floats as via lists."""
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal(7).astype(np.float32).tolist() for _ in range(5)]
    series = pl.Series(rows, dtype=pl.List(pl.Float32))
    np.testing.assert_array_equal(activation_matrix(series), np.asarray(rows, dtype=np.float32))
    ragged = pl.Series([[1.5, None, 2.0], [], None, [4.0]], dtype=pl.List(pl.Float32))
    nan = np.nan
    expected = [[1.5, nan, 2.0], [nan, nan, nan], [nan, nan, nan], [4.0, nan, nan]]
    np.testing.assert_array_equal(activation_matrix(ragged), np.asarray(expected, np.float32))
    assert activation_matrix(pl.Series([], dtype=pl.List(pl.Float32))).shape == (0, 0)
