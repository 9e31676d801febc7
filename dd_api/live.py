"""Live routes: a neuron's real activations on your text, and the neurons that fire most on it.

Both run the registry model in the inference service (`dd_api.inference` is the client); the
dataset extremes they report beside the live numbers come from ``activation_stats``.

- ``GET /api/{model}/activations/{layer}/{neuron}?text=``: every token's activation (BOS first,
  rounded to 6 decimals like Neuroscope's), the text's extremes, the neuron's dataset max and min,
  and the N2G graph's prediction over the same text where the neuron has a graph.
- ``GET /api/{model}/text-search?text=[&layer=][&limit=][&offset=]``: neurons ranked by their
  peak activation over the text (after BOS) divided by their dataset max, so a neuron that
  always fires does not drown the rest. Neurons whose dataset max is <= 0 have no such ratio:
  they are counted, not ranked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Parameter

from dd_api import n2g
from dd_api.app import ErrorBody, Layer, Model, Neuron, Payload, _index, _missing, _resolve
from dd_api.app import json_response as _json
from dd_api.errors import DDError
from dd_api.inference import MAX_TEXT_CHARS, InferenceClient, check_text
from dd_api.store import DataStore
from dd_api.values import num
from dd_assets.tables import N2G_GRAPHS, NEURON_STATS


@dataclass
class NeuronIndex:
    layer: int
    neuron: int


@dataclass
class LiveActivations:
    neuron_index: NeuronIndex
    tokens: list[str]
    token_ids: list[int]
    activations: list[float]
    max_activation: float
    min_activation: float
    max_activating_token_index: int
    dataset_max: float | None
    dataset_min: float | None
    method: str
    range_source: str
    n2g_prediction: dict[str, Any] | None
    n2g_note: str | None


@dataclass
class LiveActivationsBody:
    """The 200 answer of the activations route."""

    data: LiveActivations
    metadata: dict[str, Any]


@dataclass
class FiringNeuron:
    layer: int
    neuron: int
    activation: float
    dataset_max: float
    relative_activation: float
    peak_token_index: int
    peak_token: str


@dataclass
class TextSearchResult:
    tokens: list[str]
    token_ids: list[int]
    neurons: list[FiringNeuron]
    total: int
    unranked: int
    layers: list[int]
    method: dict[str, str]


@dataclass
class TextSearchBody:
    """The 200 answer of text-search: data, or missing_data_types when statistics are missing."""

    metadata: dict[str, Any]
    data: TextSearchResult | None = None
    limit: int | None = None
    offset: int | None = None
    missing_data_types: list[str] | None = None


LIVE_ERRORS = {
    400: ResponseSpec(
        ErrorBody,
        description="Empty text, longer than 2000 characters or than the "
        "model's context, or a malformed index",
    ),  # fmt: skip
    404: ResponseSpec(ErrorBody, description="Unknown model, or index out of range"),
    503: ResponseSpec(
        ErrorBody,
        description="Inference is off, down, starting, loading the model or busy (Retry-After)",
    ),
    504: ResponseSpec(ErrorBody, description="Inference took longer than the timeout"),
}
LiveText = Annotated[
    str,
    Parameter(
        description=f"Your text, 1 to {MAX_TEXT_CHARS} characters and at most the model's context",
        examples=[Example(value="def main():\n    return 0")],
        schema_extra={"minLength": 1, "maxLength": MAX_TEXT_CHARS},
    ),
]
OptionalLayer = Annotated[
    str | None,
    Parameter(description="Only this layer (default: all layers)", schema_extra={"pattern": r"^[0-9]+$"}),
]  # fmt: skip
SearchLimit = Annotated[int, Parameter(ge=1, le=100, description="Neurons per page")]
SearchOffset = Annotated[int, Parameter(ge=0, le=10**7, description="Neurons to skip")]


def client(state: State) -> InferenceClient:
    return state.inference


def _hook(meta: dict, layer: int) -> str:
    return str(meta["hook"]).format(layer=layer)


def _dataset_range(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    rows = store.neuron_rows(NEURON_STATS, model, layer, neuron)
    found = len(rows["neuron"]) > 0
    return {
        "dataset_max": num(rows["max"][0]) if found else None,
        "dataset_min": num(rows["min"][0]) if found else None,
    }


def _prediction(store: DataStore, model: str, meta: dict, layer: int, neuron: int, text: str):
    """N2G's prediction over the text where the neuron has a graph, else (None, why not)."""
    if _missing(store, model, meta, (N2G_GRAPHS,)):
        return None, "Neuron2Graph is not computed for this model"
    try:
        return n2g.predict(store, model, layer, neuron, text), None
    except DDError as exc:  # NotFound: no graph for this neuron
        return None, exc.detail


@get(
    "/api/{model:str}/activations/{layer:str}/{neuron:str}",
    operation_id="liveActivations",
    summary="A neuron's real activation on each token of your text",
    responses={
        200: ResponseSpec(LiveActivationsBody, description="Live activations"),
        **LIVE_ERRORS,
    },
)
async def live_activations(
    state: State, model: Model, layer: Layer, neuron: Neuron, text: LiveText
) -> Response[Payload]:
    """Runs the model on the text (BOS first, as the scanned documents) in the inference service.

    Returns ``tokens``, ``token_ids``, ``activations`` (6 decimals), the text's
    ``max_activation``/``min_activation`` (after BOS), the neuron's ``dataset_max`` and
    ``dataset_min`` (``activation_stats``, for a colour scale) and ``n2g_prediction`` (the
    neuron2graph-predict payload, or null with ``n2g_note`` saying why).
    """
    store: DataStore = state.store
    meta, li, ni = await asyncio.to_thread(_resolve, store, model, layer, neuron)
    check_text(text)
    live = await client(state).call(
        "/v1/trace", {"model": model, "text": text, "layer": li, "neuron": ni}
    )
    acts = np.asarray(live["activations"], dtype=np.float32)
    body = acts[1:]
    extremes = await asyncio.to_thread(_dataset_range, store, model, li, ni)
    prediction, note = await asyncio.to_thread(_prediction, store, model, meta, li, ni, text)
    data = {
        "neuron_index": {"layer": li, "neuron": ni},
        "tokens": live["tokens"],
        "token_ids": live["token_ids"],
        "activations": acts,
        "max_activation": num(body.max()),
        "min_activation": num(body.min()),
        "max_activating_token_index": int(body.argmax()) + 1,
        **extremes,
        "method": f"live forward pass of {model}, {_hook(meta, li)}, rounded to 6 decimals",
        "range_source": "activation_stats (max and min over the whole dataset)",
        "n2g_prediction": prediction,
        "n2g_note": note,
    }
    return _json({"data": data, "metadata": meta})


def _rank(store: DataStore, model: str, live: dict) -> tuple[np.ndarray, ...]:
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
        for col, values in zip(
            cols,
            (
                np.full(len(neurons), layer),
                neurons,
                peak,
                dmax[neurons],
                np.round(peak / dmax[neurons], 6),
                index[slot, neurons],
            ),  # fmt: skip
            strict=True,
        ):
            col.append(values)
    layer, neuron, peak, dmax, rel, tok = (np.concatenate(c) for c in cols)
    order = np.lexsort((neuron, layer, -rel))
    return layer[order], neuron[order], peak[order], dmax[order], rel[order], tok[order], unranked


def _missing_stats(store: DataStore, model: str, meta: dict, layers: list[int]) -> dict | None:
    present = store.layers_present(NEURON_STATS, model)
    if all(layer in present for layer in layers):
        return None
    return {"missing_data_types": [NEURON_STATS.name], "metadata": meta}


@get(
    "/api/{model:str}/text-search",
    operation_id="textSearch",
    summary="The neurons that fire most on your text",
    responses={200: ResponseSpec(TextSearchBody, description="Ranked neurons"), **LIVE_ERRORS},
)
async def text_search(
    state: State,
    model: Model,
    text: LiveText,
    layer: OptionalLayer = None,
    limit: SearchLimit = 20,
    offset: SearchOffset = 0,
) -> Response[Payload]:
    """Neurons ranked by their peak activation on the text relative to their dataset max.

    Returns ``{"data": {"tokens", "neurons": [{"layer", "neuron", "activation",
    "dataset_max", "relative_activation", "peak_token_index", "peak_token"}], "total",
    "unranked", "layers", "method"}, "limit", "offset", "metadata"}``. ``activation`` is the
    neuron's largest activation over the text after BOS, at ``peak_token_index``.
    """
    store: DataStore = state.store
    meta, _, _ = await asyncio.to_thread(_resolve, store, model, None, None)
    li = None if layer is None else _index("layer", layer, meta["num_layers"], f"model {model!r}")
    check_text(text)
    layers = list(range(meta["num_layers"])) if li is None else [li]
    missing = await asyncio.to_thread(_missing_stats, store, model, meta, layers)
    if missing:
        return _json(missing)
    live = await client(state).call("/v1/peaks", {"model": model, "text": text, "layers": layers})
    *ranked, unranked = await asyncio.to_thread(_rank, store, model, live)
    tokens = live["tokens"]
    page = [
        {
            "layer": int(lay),
            "neuron": int(neu),
            "activation": num(peak),
            "dataset_max": num(dmax),
            "relative_activation": float(rel),
            "peak_token_index": int(tok),
            "peak_token": tokens[int(tok)],
        }
        for lay, neu, peak, dmax, rel, tok in zip(
            *(col[offset : offset + limit] for col in ranked), strict=True
        )
    ]
    data = {
        "tokens": tokens,
        "token_ids": live["token_ids"],
        "neurons": page,
        "total": len(ranked[0]),
        "unranked": unranked,
        "layers": layers,
        "method": {
            "activation": f"live forward pass of {model}, {meta['hook']}, the largest "
            "activation over the text's tokens after BOS, rounded to 6 decimals",
            "dataset_max": f"activation_stats: max over the dataset ({meta['num_tokens']} tokens)",
            "relative_activation": "activation / dataset_max; neurons whose dataset max is <= 0 "
            "are counted in unranked",
        },
    }
    return _json({"data": data, "limit": limit, "offset": offset, "metadata": meta})


LIVE_HANDLERS = [live_activations, text_search]
