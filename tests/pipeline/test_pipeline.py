"""The Dagster pipeline end to end on the tiny native model, into real Delta tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from dagster_project.runner import materialize_models
from dd_assets import storage
from dd_assets.methods.hooks import hook_name
from dd_assets.models import load_bridge
from dd_assets.registry import load_registry
from dd_assets.tables import (
    DATASET_TOKENS,
    LOGIT_EFFECTS,
    MODEL_METADATA,
    NEURON_EXAMPLE_CHOICES,
    NEURON_EXAMPLES,
    NEURON_STATS,
)

N_LAYERS, D_MLP, TOP_K, DOCS = 2, 96, 5, 40


def test_every_table_has_every_neuron(tiny):
    assert tiny.report.model_runs == ["tiny"]
    assert tiny.report.layer_runs == ["0|tiny", "1|tiny"]
    tokens = storage.read(tiny.root, DATASET_TOKENS, "tiny")
    assert tokens.height == DOCS
    assert tokens["token_ids"].list.len().unique().to_list() == [24]
    for table in (NEURON_STATS, LOGIT_EFFECTS):
        df = storage.read(tiny.root, table, "tiny")
        assert df.height == N_LAYERS * D_MLP
        assert df.select("layer", "neuron").n_unique() == N_LAYERS * D_MLP
    examples = storage.read(tiny.root, NEURON_EXAMPLES, "tiny")
    top = examples.filter(pl.col("kind") == "top")
    assert top.group_by("layer", "neuron").len()["len"].unique().to_list() == [TOP_K]
    bottom = examples.filter(pl.col("kind") == "bottom")
    assert bottom.group_by("layer", "neuron").len()["len"].unique().to_list() == [TOP_K]
    quantile = examples.filter(pl.col("kind") == "quantile")
    assert quantile.select("layer", "neuron").n_unique() == N_LAYERS * D_MLP
    meta = storage.read(tiny.root, MODEL_METADATA, "tiny").row(0, named=True)
    assert (meta["num_layers"], meta["layer_size"], meta["num_documents"]) == (2, 96, DOCS)


@pytest.mark.parametrize(
    ("kind", "column", "descending"),
    [("top", "max_activation", True), ("bottom", "min_activation", False)],
)
def test_ranked_examples_are_sorted_and_consistent_with_choices(tiny, kind, column, descending):
    ex = storage.read(tiny.root, NEURON_EXAMPLES, "tiny").filter(pl.col("kind") == kind)
    choices = storage.read(tiny.root, NEURON_EXAMPLE_CHOICES, "tiny").filter(pl.col("kind") == kind)
    joined = ex.join(choices, on=["layer", "neuron", "kind", "rank"])
    assert joined.height == ex.height
    assert (joined["doc_index"] == joined["doc_index_right"]).all()
    # The activations kept by the scan reproduce its document extremes (after rounding).
    np.testing.assert_allclose(joined[column], joined["doc_max"], rtol=1e-5, atol=1e-6)
    ranked = ex.sort("layer", "neuron", "rank")
    per_neuron = ranked.group_by("layer", "neuron", maintain_order=True).agg(column)
    for values in per_neuron[column].to_list():
        assert values == sorted(values, reverse=descending)


def test_served_activations_equal_fresh_transformer_lens_recomputation(tiny):
    spec = load_registry(tiny.registry)["tiny"]
    bridge = load_bridge(spec, "cpu")
    tokens = storage.read(tiny.root, DATASET_TOKENS, "tiny").sort("doc_index")
    examples = storage.read(tiny.root, NEURON_EXAMPLES, "tiny")
    sample = examples.filter(pl.col("neuron").is_in([0, 17, 95]))
    docs = sorted(set(sample["doc_index"].to_list()))
    ids = torch.tensor([tokens["token_ids"][d].to_list() for d in docs])
    _, cache = bridge.run_with_cache(ids, names_filter=lambda n: n.endswith("mlp.hook_post"))
    for row in sample.iter_rows(named=True):
        fresh = cache[hook_name(row["layer"])][docs.index(row["doc_index"]), :, row["neuron"]]
        np.testing.assert_allclose(row["activations"], fresh.numpy(), atol=1e-5)
        body = fresh[1:]
        assert row["max_activating_token_index"] == int(body.argmax()) + 1
        # Served values are rounded to 6 decimals; the extremes are those of the served values.
        assert row["max_activation"] == pytest.approx(float(body.max()), abs=1e-6)
        assert row["max_activation"] == max(row["activations"][1:])
        assert row["min_activation"] == min(row["activations"][1:])


def test_rerun_is_idempotent(tiny):
    before = {t.name: storage.read(tiny.root, t, "tiny") for t in (NEURON_EXAMPLES, LOGIT_EFFECTS)}
    report = materialize_models(tiny.instance, str(tiny.registry), tiny.root, force=True)
    assert report.model_runs == ["tiny"] and len(report.layer_runs) == N_LAYERS
    for table in (NEURON_EXAMPLES, LOGIT_EFFECTS):
        after = storage.read(tiny.root, table, "tiny")
        assert after.height == before[table.name].height  # replaced, not appended
        assert after.sort(table.sort_by).equals(before[table.name].sort(table.sort_by))


def test_second_run_without_force_skips_done_partitions(tiny):
    report = materialize_models(tiny.instance, str(tiny.registry), tiny.root)
    assert report.model_runs == [] and report.layer_runs == [] and report.skipped == ["tiny"]
