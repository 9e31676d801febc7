"""Activation statistics over the whole dataset: per neuron, per layer, per model."""

from __future__ import annotations

from dd_api.query.refs import LayerRef, ModelRef, NeuronRef
from dd_api.query.rows import neuron_row
from dd_api.query.schemas import Histogram, LayerStats, StatsLayer, StatsModel, StatsNeuron
from dd_api.query.store import DataStore
from dd_api.query.values import floats, num
from dd_assets.tables import NEURON_STATS


def neuron(store: DataStore, ref: NeuronRef) -> StatsNeuron:
    r = neuron_row(store, NEURON_STATS, ref)
    return StatsNeuron(
        neuron_index=ref.index,
        count=int(r["count"]),
        max=num(r["max"]),
        min=num(r["min"]),
        mean=num(r["mean"]),
        std=num(r["std"]),
        frac_positive=num(r["frac_positive"]),
        histogram=Histogram(
            edges=floats(r["hist_edges"]),
            counts=r["hist_counts"].tolist(),
            # Counts cover a systematic sample of positions (every n-th); moments use all of them.
            sampled_positions=int(r["hist_counts"].sum()),
        ),
    )


def layer(store: DataStore, ref: LayerRef) -> StatsLayer:
    df = store.frame(NEURON_STATS, ref.model.name, ref.layer)
    return StatsLayer(
        num_neurons=df.height,
        max=floats(df["max"]),
        min=floats(df["min"]),
        mean=floats(df["mean"]),
        frac_positive=floats(df["frac_positive"]),
    )


def model(store: DataStore, ref: ModelRef) -> StatsModel:
    summary = []
    for la in sorted(store.layers_present(NEURON_STATS, ref.name)):
        df = store.frame(NEURON_STATS, ref.name, la)
        summary.append(
            LayerStats(
                layer=la,
                mean_max=num(df["max"].mean()),
                mean_frac_positive=num(df["frac_positive"].mean()),
                dead_neurons=int((df["max"] <= 0).sum()),
            )
        )
    return StatsModel(layers=summary)


def per_neuron(store: DataStore, ref: LayerRef) -> dict[int, tuple[float, float]]:
    """neuron -> (max, fraction positive) of a layer, for tables that list neurons."""
    df = store.frame(NEURON_STATS, ref.model.name, ref.layer)
    return {
        int(n): (float(mx), float(fp))
        for n, mx, fp in df.select("neuron", "max", "frac_positive").iter_rows()
    }
