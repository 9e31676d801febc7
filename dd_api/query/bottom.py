"""The negative side of a neuron (``bottom_examples``): its most negative documents, and the
neurons of a layer ranked by their most negative activation. ReLU models have no negative side,
and say so instead of answering with empty lists that look like missing data."""

from __future__ import annotations

import numpy as np

from dd_api.query.neuroscope import texts_of
from dd_api.query.refs import LayerRef, NeuronRef
from dd_api.query.schemas import BottomLayer, BottomNeuron, NeuronIndex
from dd_api.query.store import DataStore
from dd_api.query.values import exact
from dd_assets.tables import MODEL_METADATA, NEURON_EXAMPLES, NEURON_STATS

NONNEGATIVE_NOTE = (
    "this model's activation (ReLU) is never negative, so it has no negative examples"
)


def nonnegative(store: DataStore, model: str) -> bool:
    """Whether the hooked activation cannot go below 0 (stored by the metadata asset)."""
    df = store.frame(MODEL_METADATA, model)
    if "nonnegative" not in df.columns or df.height == 0:
        return False
    return bool(df["nonnegative"][0] or False)


def neuron(store: DataStore, ref: NeuronRef) -> BottomNeuron:
    if nonnegative(store, ref.model.name):
        return BottomNeuron(ref.index, True, [], note=NONNEGATIVE_NOTE)
    rows = store.neuron_rows(NEURON_EXAMPLES, ref.model.name, ref.layer, ref.neuron)
    kinds = np.asarray(rows["kind"].tolist(), dtype=object)
    which = np.flatnonzero(kinds == "bottom")
    which = which[np.argsort(np.asarray(rows["rank"])[which], kind="stable")]
    texts = texts_of(store, ref.model.name, rows, which.astype(np.intp), True)
    first = texts[0] if texts else None
    return BottomNeuron(
        ref.index,
        False,
        texts,
        min_range=first.min_range if first else None,
        max_range=first.max_range if first else None,
    )


def layer(store: DataStore, ref: LayerRef) -> BottomLayer:
    if nonnegative(store, ref.model.name):
        return BottomLayer(True, [], note=NONNEGATIVE_NOTE)
    df = store.frame(NEURON_STATS, ref.model.name, ref.layer).sort(["min", "neuron"])
    ranked = [
        (NeuronIndex(ref.layer, n), v)
        for n, v in zip(df["neuron"].to_list(), exact(df["min"]), strict=True)
        if v < 0
    ]
    return BottomLayer(False, ranked, num_neurons=df.height)
