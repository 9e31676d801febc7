"""Live model answers from the inference service's numbers and the stored tables.

The web layer asks the inference service (``dd_infer``) for a text's activations; these functions
check the text, and join what it returns with the stored data: the neuron's dataset extremes
(``activation_stats``, the colour scale and the denominator of the text-search ranking) and the
N2G graph's prediction over the same text. No HTTP here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dd_api.query import n2g
from dd_api.query.errors import BadRequest, MissingData
from dd_api.query.refs import ModelRef, NeuronRef
from dd_api.query.schemas import FiringNeuron, LiveActivations, Prediction, TextSearch
from dd_api.query.store import DataStore
from dd_api.query.values import num
from dd_assets.tables import NEURON_STATS

MAX_TEXT_CHARS = n2g.MAX_PREDICT_CHARS
"""Longest text the live routes accept (the inference service enforces it and the context too)."""


def check_text(text: str | None) -> str:
    """400 for an empty or over-long text, before any request to the inference service."""
    if not text:
        raise BadRequest(f"text is empty: pass ?text=... (1 to {MAX_TEXT_CHARS} characters)")
    if len(text) > MAX_TEXT_CHARS:
        raise BadRequest(f"text is limited to {MAX_TEXT_CHARS} characters, got {len(text)}")
    return text


def _dataset_range(store: DataStore, ref: NeuronRef) -> tuple[float | None, float | None]:
    rows = store.neuron_rows(NEURON_STATS, ref.model.name, ref.layer, ref.neuron)
    if len(rows["neuron"]) == 0:
        return None, None
    return num(rows["max"][0]), num(rows["min"][0])


def _prediction(
    store: DataStore, ref: NeuronRef, text: str
) -> tuple[Prediction | None, str | None]:
    """N2G's prediction over the text where the neuron has a graph, else (None, why not)."""
    try:
        return n2g.predict(store, ref, text), None
    except MissingData as missing:  # no graphs for the model, or none for this neuron
        return None, missing.detail


def activations(
    store: DataStore, ref: NeuronRef, text: str, live: dict[str, Any]
) -> LiveActivations:
    """The inference service's trace of one neuron (``/v1/trace``) with the stored context."""
    acts = np.asarray(live["activations"], dtype=np.float32)
    body = acts[1:]
    dmax, dmin = _dataset_range(store, ref)
    prediction, note = _prediction(store, ref, text)
    hook = ref.model.meta.hook.format(layer=ref.layer)
    return LiveActivations(
        neuron_index=ref.index,
        tokens=live["tokens"],
        token_ids=live["token_ids"],
        activations=acts,
        max_activation=num(body.max()),
        min_activation=num(body.min()),
        max_activating_token_index=int(body.argmax()) + 1,
        dataset_max=dmax,
        dataset_min=dmin,
        method=f"live forward pass of {ref.model.name}, {hook}, rounded to 6 decimals",
        range_source="activation_stats (max and min over the whole dataset)",
        n2g_prediction=prediction,
        n2g_note=note,
    )


def require_stats(store: DataStore, ref: ModelRef, layers: list[int]) -> None:
    """MissingData unless every layer has ``activation_stats`` (the ranking's denominator)."""
    present = store.layers_present(NEURON_STATS, ref.name)
    if not all(layer in present for layer in layers):
        raise MissingData([NEURON_STATS.name], f"no activation_stats for model {ref.name!r} yet")


def _rank(store: DataStore, model: str, live: dict[str, Any]) -> tuple[list[np.ndarray], int]:
    """(layer, neuron, peak, dataset max, relative, token index) of every rankable neuron, best
    first, and how many neurons were left out for a dataset max <= 0."""
    cols: list[list[np.ndarray]] = [[], [], [], [], [], []]
    unranked = 0
    peaks = np.asarray(live["peak"], dtype=np.float32)
    index = np.asarray(live["peak_token_index"], dtype=np.int64)
    for slot, layer in enumerate(live["layers"]):
        stats = store.frame(NEURON_STATS, model, layer)
        dmax = np.full(peaks.shape[1], np.nan, dtype=np.float64)
        dmax[stats["neuron"].to_numpy()] = stats["max"].to_numpy()
        ok = dmax > 0
        unranked += int((~ok).sum())
        neurons = np.flatnonzero(ok)
        peak = peaks[slot, neurons].astype(np.float64)
        values = (
            np.full(len(neurons), layer),
            neurons,
            peak,
            dmax[neurons],
            np.round(peak / dmax[neurons], 6),
            index[slot, neurons],
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    layer, neuron, peak, dmax, rel, tok = (np.concatenate(c) for c in cols)
    order = np.lexsort((neuron, layer, -rel))
    return [c[order] for c in (layer, neuron, peak, dmax, rel, tok)], unranked


def text_search(
    store: DataStore, ref: ModelRef, live: dict[str, Any], limit: int, offset: int
) -> TextSearch:
    """Rank the inference service's per-layer peaks (``/v1/peaks``) by their dataset max."""
    ranked, unranked = _rank(store, ref.name, live)
    tokens = live["tokens"]
    page = [
        FiringNeuron(
            layer=int(lay),
            neuron=int(neu),
            activation=num(peak),
            dataset_max=num(dmax),
            relative_activation=float(rel),
            peak_token_index=int(tok),
            peak_token=tokens[int(tok)],
        )
        for lay, neu, peak, dmax, rel, tok in zip(
            *(col[offset : offset + limit] for col in ranked), strict=True
        )
    ]
    meta = ref.meta
    return TextSearch(
        tokens=tokens,
        token_ids=live["token_ids"],
        neurons=page,
        total=len(ranked[0]),
        unranked=unranked,
        layers=list(live["layers"]),
        method={
            "activation": f"live forward pass of {ref.name}, {meta.hook}, the largest "
            "activation over the text's tokens after BOS, rounded to 6 decimals",
            "dataset_max": f"activation_stats: max over the dataset ({meta.num_tokens} tokens)",
            "relative_activation": "activation / dataset_max; neurons whose dataset max is <= 0 "
            "are counted in unranked",
        },
    )
