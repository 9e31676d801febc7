"""``similar_neurons``: a neuron's neighbours by co-activation (Pearson correlation over the
seeded activation sample), any layer, with their sign; not N2G's graph-overlap similarity."""

from __future__ import annotations

from dd_api.query.refs import NeuronRef
from dd_api.query.schemas import CoactiveNeuron, SimilarNeurons
from dd_api.query.store import DataStore
from dd_api.query.values import exact
from dd_assets.tables import ACTIVATION_SAMPLE_WINDOWS, NEURON_COACTIVATION

METHOD = "pearson-activation-sample"
CONSTANT_NOTE = "the neuron is constant on the sample: its correlation is undefined"


def sample_positions(store: DataStore, model: str) -> int:
    return store.derived(
        "sample_positions",
        (ACTIVATION_SAMPLE_WINDOWS,),
        model,
        lambda: int(store.frame(ACTIVATION_SAMPLE_WINDOWS, model)["length"].sum()),
    )


def neuron(store: DataStore, ref: NeuronRef) -> SimilarNeurons:
    rows = store.neuron_rows(NEURON_COACTIVATION, ref.model.name, ref.layer, ref.neuron)
    similar = [
        CoactiveNeuron(int(ol), int(on), c, "positive" if c >= 0 else "negative")
        for ol, on, c in zip(
            rows["other_layer"].tolist(),
            rows["other_neuron"].tolist(),
            exact(rows["correlation"]),
            strict=True,
        )
    ]
    return SimilarNeurons(
        neuron_index=ref.index,
        method=str(rows["method"][0]) if similar else METHOD,
        sample_positions=sample_positions(store, ref.model.name),
        similar=similar,
        note=None if similar else CONSTANT_NOTE,
    )
