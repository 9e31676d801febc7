"""Live routes: a neuron's real activations on your text, and the neurons that fire most on it.

Both run the registry model in the inference service (`dd_api.api.inference` is the client); the
answers are assembled by the query layer (`dd_api.query.live`), which adds the dataset extremes
from ``activation_stats`` and the N2G prediction.

- ``GET /api/{model}/activations/{layer}/{neuron}?text=``: every token's activation (BOS first,
  rounded to 6 decimals like Neuroscope's), the text's extremes, the neuron's dataset max and min,
  and the N2G graph's prediction over the same text where the neuron has a graph.
- ``GET /api/{model}/text-search?text=[&layer=][&limit=][&offset=]``: neurons ranked by their
  peak activation over the text (after BOS) divided by their dataset max, so a neuron that
  always fires does not drown the rest. Neurons whose dataset max is <= 0 have no such ratio:
  they are counted, not ranked.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.spec import Example
from litestar.params import Parameter

from dd_api.api.controller import JSON, Layer, Model, Neuron, answer, envelope, errors, success
from dd_api.api.encoding import encode
from dd_api.api.inference import InferenceClient
from dd_api.api.responses import LiveActivationsResponse, Missing, TextSearchResponse
from dd_api.query import live
from dd_api.query.refs import ModelRef, layer_ref, model_ref, neuron_ref
from dd_api.query.store import DataStore

LIVE_ERRORS = errors(
    e400="Empty text, longer than 2000 characters or than the model's context, "
    "or a malformed index",
    e404="Unknown model, or index out of range",
    e503="Inference is off, down, starting, loading the model or busy (Retry-After); "
    "or the data is being rewritten",
    e504="Inference took longer than DEEPDECIPHER_INFER_TIMEOUT",
)
LiveText = Annotated[
    str,
    Parameter(
        description=f"Your text, 1 to {live.MAX_TEXT_CHARS} characters and at most the model's "
        "context",
        examples=[Example(value="def main():\n    return 0")],
        schema_extra={"minLength": 1, "maxLength": live.MAX_TEXT_CHARS},
    ),
]
OptionalLayer = Annotated[
    str | None,
    Parameter(description="Only this layer (default: all layers)", schema_extra={"pattern": r"^[0-9]+$"}),
]  # fmt: skip
SearchLimit = Annotated[int, Parameter(ge=1, le=100, description="Neurons per page")]
SearchOffset = Annotated[int, Parameter(ge=0, le=10**7, description="Neurons to skip")]


def _client(state: State) -> InferenceClient:
    return state.inference


def _search_layers(
    store: DataStore, model: str, layer: str | None
) -> tuple[ModelRef, list[int], dict]:
    """The model, the layers to rank, and the envelope: "missing" if one lacks ``activation_stats``."""
    ref = model_ref(store, model)
    layers = list(range(ref.num_layers)) if layer is None else [layer_ref(store, ref, layer).layer]
    return ref, layers, envelope(lambda: live.require_stats(store, ref, layers), ref.meta)


class LiveController(Controller):
    path = "/api"
    tags = ["live model"]

    @get(
        "/{model:str}/activations/{layer:str}/{neuron:str}",
        operation_id="liveActivations",
        name="api:activations",
        summary="A neuron's real activation on each token of your text",
        responses={200: success(LiveActivationsResponse, "Live activations"), **LIVE_ERRORS},
    )
    async def activations(
        self, state: State, model: Model, layer: Layer, neuron: Neuron, text: LiveText
    ) -> Response:
        """Runs the model on the text (BOS first, as the scanned documents) in the inference service.

        Returns ``tokens``, ``token_ids``, ``activations`` (6 decimals), the text's
        ``max_activation``/``min_activation`` (after BOS), the neuron's ``dataset_max`` and
        ``dataset_min`` (``activation_stats``, for a colour scale) and ``n2g_prediction`` (the
        neuron2graph-predict payload, or null with ``n2g_note`` saying why).
        """
        store: DataStore = state.store
        ref = await anyio.to_thread.run_sync(neuron_ref, store, model, layer, neuron)
        live.check_text(text)
        body = {"model": model, "text": text, "layer": ref.layer, "neuron": ref.neuron}
        trace = await _client(state).call("/v1/trace", body)
        return await answer(
            store,
            lambda: {"data": live.activations(store, ref, text, trace), "metadata": ref.model.meta},
        )

    @get(
        "/{model:str}/text-search",
        operation_id="textSearch",
        name="api:text-search",
        summary="The neurons that fire most on your text",
        responses={200: success(TextSearchResponse | Missing, "Ranked neurons"), **LIVE_ERRORS},
    )
    async def text_search(
        self,
        state: State,
        model: Model,
        text: LiveText,
        layer: OptionalLayer = None,
        limit: SearchLimit = 20,
        offset: SearchOffset = 0,
    ) -> Response:
        """Neurons ranked by their peak activation on the text relative to their dataset max.

        ``activation`` is the neuron's largest activation over the text after BOS, at
        ``peak_token_index``; ``relative_activation`` = ``activation / dataset_max``. Answers
        ``missing_data_types`` while ``activation_stats`` is not computed.
        """
        store: DataStore = state.store
        ref, layers, found = await anyio.to_thread.run_sync(_search_layers, store, model, layer)
        live.check_text(text)
        if "data" not in found:
            return Response(encode(found), media_type=JSON)
        body = {"model": model, "text": text, "layers": layers}
        peaks = await _client(state).call("/v1/peaks", body)

        def compute() -> dict:
            data = live.text_search(store, ref, peaks, limit, offset)
            return {"data": data, "limit": limit, "offset": offset, "metadata": ref.meta}

        return await answer(store, compute)
