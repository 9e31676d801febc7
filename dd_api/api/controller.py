"""DeepDecipher's JSON routes over the query layer, as one Litestar controller.

Routes (all GET):

- ``/api``: every served model's metadata.
- ``/api/{model}/{service}[/{layer}[/{neuron}]]``: one service (or ``all``) at model, layer or
  neuron level, as DeepDecipher's envelope (built in `envelope`, and nowhere else).
- ``/api/{model}/neuron2graph-search``, ``/api/{model}/token-search`` (every neuron's examples
  and graphs), ``/api/{model}/explanation-search``: searches.
- ``/api/{model}/neuron2graph-predict/{layer}/{neuron}``: a graph run over the caller's text.

Each answer is computed on the event loop when everything it reads is cached, and in a worker
thread otherwise (`answer`), so a cold Delta read never stalls other requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Parameter

from dd_api.api.encoding import encode
from dd_api.api.responses import (
    BY_LEVEL,
    ErrorBody,
    ExplanationSearchResponse,
    Missing,
    ModelList,
    ModelTokenSearchResponse,
    PredictionResponse,
    TokenSearchResponse,
)
from dd_api.query import n2g, search, token_search
from dd_api.query.errors import MissingData, NotFound
from dd_api.query.refs import ModelRef, Ref, model_ref, neuron_ref, resolve
from dd_api.query.services import SERVICES, run, service
from dd_api.query.store import Cold, DataStore
from dd_api.query.terms import MAX_TERMS
from dd_api.settings import ApiSettings
from dd_assets.registry import NAME_PATTERN

JSON = "application/json"

COMMON_STATUSES = {
    405: "Any method but GET, HEAD and OPTIONS (a CORS preflight)",
    414: "Path or query string longer than 2048 bytes",
    429: "Over DEEPDECIPHER_RATE_LIMIT requests per minute from one address (when it is set)",
    500: "Internal error",
    503: "The data is being rewritten (e.g. a new dataset); retry",
}
"""Statuses every route can answer, besides its own."""


def errors(**own: str) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the route's own error statuses (``e400="why"``) and the common ones."""
    statuses = {**COMMON_STATUSES, **{int(k[1:]): v for k, v in own.items()}}
    return {
        code: ResponseSpec(ErrorBody, description=why, generate_examples=False)
        for code, why in sorted(statuses.items())
    }


ERRORS = errors(
    e400="Malformed layer or neuron index, or a bad limit/offset",
    e404="Unknown model or service, an index out of range, or a level the service does not serve",
)

# Path segments are typed as strings and validated by the query layer's refs, so that a malformed
# index gets our 400 with a helpful message; the patterns only document what is valid.
Layer = Annotated[
    str,
    Parameter(
        description="Layer index, 0-based (malformed: 400)", schema_extra={"pattern": r"^[0-9]+$"}
    ),
]
Neuron = Annotated[
    str,
    Parameter(
        description="Neuron index within the layer, 0-based", schema_extra={"pattern": r"^[0-9]+$"}
    ),
]
Model = Annotated[
    str,
    Parameter(
        description="Model name from GET /api", schema_extra={"pattern": NAME_PATTERN.pattern}
    ),
]
Service = Annotated[
    str,
    Parameter(
        description="A service name, or all (every service at once)",
        examples=[Example(value=name) for name in [*SERVICES, "all"]],
    ),
]
Limit = Annotated[
    int | None,
    Parameter(ge=1, le=ApiSettings.model_fields["max_page_size"].default,
              description="Page size of important_neurons (neuroscope)"),
]  # fmt: skip
Offset = Annotated[int, Parameter(ge=0, le=10**9, description="Offset into important_neurons")]

_TERM = r"\s*(any|activating|important)\s*:[^,]*[^,\s][^,]*"
SearchQuery = Annotated[
    str,
    Parameter(
        query="query",  # `query` itself is a reserved handler argument in Litestar
        description="type:token[,type:token...], type = any | activating | important; terms "
        "intersect, types within a term unite; tokens are matched trimmed and lower-cased. "
        "Malformed: 400",
        examples=[Example(value="any:the"), Example(value="activating:import,important:from")],
        schema_extra={"pattern": f"^{_TERM}(,{_TERM}){{0,{MAX_TERMS - 1}}}$"},
    ),
]
# A term as token_search's parser reads it: a type, ':', then characters other than an unescaped
# comma (schemathesis: a schema-valid query must not be a 400).
_INDEX_TERM = r"\s*(any|activating|negative|important)\s*:([^,\\]|\\.)+"
IndexQuery = Annotated[
    str,
    Parameter(
        query="query",
        description="type:token[,type:token...], type = any | activating | negative | important "
        "(any = all three); terms intersect, types within a term unite; tokens are matched "
        "trimmed and lower-cased, whitespace-only tokens as they are (write \\n, \\t, \\, "
        "and \\\\ for a newline, tab, comma and backslash). Malformed: 400",
        examples=[Example(value="any:the"), Example(value="negative:\\n")],
        schema_extra={"pattern": f"^{_INDEX_TERM}(,{_INDEX_TERM}){{0,{MAX_TERMS - 1}}}$"},
    ),
]
TokenSearchLimit = Annotated[int, Parameter(ge=1, le=1000, description="Page size")]
Text = Annotated[
    str,
    Parameter(
        description="Text to run the neuron's graph over (1 to 2000 characters)",
        schema_extra={"minLength": 1, "maxLength": n2g.MAX_PREDICT_CHARS},
    ),
]
SearchText = Annotated[
    str,
    Parameter(
        description="What to find in explanations, at most "
        f"{search.MAX_QUERY} characters: words (BM25, every word must occur) and meaning "
        "(sentence-embedding similarity), fused as `mode` says",
        examples=[Example(value="def")],
        schema_extra={"pattern": search.WORD.pattern, "max_length": search.MAX_QUERY},
    ),
]
SearchMode = Annotated[
    Literal["hybrid", "bm25", "embedding"],
    Parameter(
        description="hybrid: reciprocal-rank fusion of BM25 and embedding similarity; bm25: words "
        "only; embedding: meaning only. Each response names the ranking it used in `ranking`"
    ),
]
SearchLimit = Annotated[int, Parameter(ge=1, le=100, description="Results per page")]
SearchOffset = Annotated[int, Parameter(ge=0, le=10**6, description="Results to skip")]


async def answer(store: DataStore, compute: Callable[[], Any]) -> Response:
    """`compute`'s value as JSON: on the event loop if it only reads cached data, else (a cold
    partition, a due version refresh) in a worker thread, where concurrent loads coalesce."""

    def body() -> bytes:
        return encode(compute())

    try:
        with store.warm_only():
            content = body()
    except Cold:
        content = await anyio.to_thread.run_sync(body)
    return Response(content, media_type=JSON)


def success(returns: Any, description: str) -> ResponseSpec:
    """The documented 200 response: a named component (no random examples: they would be noise)."""
    return ResponseSpec(returns, description=description, generate_examples=False)


def envelope(compute: Callable[[], Any], meta: Any) -> dict:
    """DeepDecipher's envelope around one service's data; ``metadata`` is null for the metadata
    service itself (DeepDecipher duplicated it), and data that is not there yet is listed."""
    try:
        data = compute()
    except MissingData as missing:
        return {
            "missing_data_types": missing.tables,
            "detail": missing.detail,
            "metadata": meta,
        }
    return {"data": data, "metadata": meta}


def searched(compute: Callable[[], Any], meta: Any, **extra: object) -> dict:
    """A search's answer: the result's fields at the top level (DeepDecipher's shape), then
    `extra` and the metadata; the "missing" envelope while its index is not computed."""
    found = envelope(compute, meta)
    if "data" not in found:
        return found
    return {**msgspec.structs.asdict(found["data"]), **extra, "metadata": meta}


def _meta(ref: Ref):
    return ref.meta if isinstance(ref, ModelRef) else ref.model.meta


def serve(
    store: DataStore,
    model: str,
    name: str,
    layer: str | None = None,
    neuron: str | None = None,
    page: tuple[int | None, int] | None = None,
) -> dict:
    """One service (or all of them) at the level given by `layer` and `neuron`."""
    if name != "all":
        svc = service(name)
        ref = resolve(store, model, layer, neuron)
        meta = None if name == "metadata" else _meta(ref)
        return envelope(lambda: run(store, svc, ref, page), meta)
    ref = resolve(store, model, layer, neuron)
    out: dict[str, dict] = {}
    for svc_name, svc in SERVICES.items():
        try:
            entry = envelope(lambda svc=svc: run(store, svc, ref), None)
        except NotFound as exc:  # the service has no data at this level
            out[svc_name] = {"error": exc.detail}
            continue
        entry.pop("metadata")
        out[svc_name] = entry
    return out


def _state(state: State) -> DataStore:
    return state.store


class ServiceController(Controller):
    path = "/api"
    tags = ["services"]

    @get(
        "/",
        operation_id="listModels",
        name="api:models",
        summary="Served models",
        responses=errors(),
    )
    async def list_models(self, state: State) -> Response[ModelList]:
        """Metadata of every registered model that has been materialized."""
        store = _state(state)

        def models() -> dict:
            served = []
            for name in store.registry().names:
                try:
                    served.append(model_ref(store, name).meta)
                except NotFound:
                    continue
            return {"models": served}

        return await answer(store, models)

    @get(
        "/{model:str}/{service:str}",
        operation_id="modelService",
        name="api:model",
        summary="Model-level data",
        responses={
            200: success(BY_LEVEL["model"], "Envelope"),
            **ERRORS,
        },
    )
    async def model_service(
        self, state: State, model: Model, service: Service, limit: Limit = None, offset: Offset = 0
    ) -> Response:
        """One service (or ``all``) at model level, e.g. neuroscope's most important neurons."""
        store = _state(state)
        return await answer(store, lambda: serve(store, model, service, page=(limit, offset)))

    @get(
        "/{model:str}/{service:str}/{layer:str}",
        operation_id="layerService",
        name="api:layer",
        summary="Layer-level data",
        responses={
            200: success(BY_LEVEL["layer"], "Envelope"),
            **ERRORS,
        },
    )
    async def layer_service(
        self,
        state: State,
        model: Model,
        service: Service,
        layer: Layer,
        limit: Limit = None,
        offset: Offset = 0,
    ) -> Response:
        """One service (or ``all``) at layer level."""
        store = _state(state)
        return await answer(
            store, lambda: serve(store, model, service, layer, page=(limit, offset))
        )

    @get(
        "/{model:str}/{service:str}/{layer:str}/{neuron:str}",
        operation_id="neuronService",
        name="api:neuron",
        summary="Neuron-level data",
        responses={
            200: success(BY_LEVEL["neuron"], "Envelope"),
            **ERRORS,
        },
    )
    async def neuron_service(
        self, state: State, model: Model, service: Service, layer: Layer, neuron: Neuron
    ) -> Response:
        """One service (or ``all``) for one neuron, e.g. its Neuroscope examples."""
        store = _state(state)
        return await answer(store, lambda: serve(store, model, service, layer, neuron))

    @get(
        "/{model:str}/neuron2graph-search",
        operation_id="neuron2graphSearch",
        name="api:n2g-search",
        summary="Neurons whose N2G graph holds tokens",
        responses={
            200: success(TokenSearchResponse | Missing, "Matches"),
            **ERRORS,
        },
    )
    async def neuron2graph_search(
        self,
        state: State,
        model: Model,
        terms: SearchQuery,
        limit: TokenSearchLimit = 100,
        offset: Offset = 0,
    ) -> Response:
        """DeepDecipher's token search, ranked by the matched tokens' activation, paginated."""
        store = _state(state)

        def compute() -> dict:
            ref = model_ref(store, model)
            return searched(
                lambda: n2g.search(store, ref, terms, limit, offset),
                ref.meta,
                limit=limit,
                offset=offset,
            )

        return await answer(store, compute)

    @get(
        "/{model:str}/token-search",
        operation_id="tokenSearch",
        name="api:token-search",
        summary="Neurons that fire (or go most negative) on tokens, over every neuron",
        responses={
            200: success(ModelTokenSearchResponse | Missing, "Matches"),
            **errors(
                e400="Malformed query, or a bad limit/offset",
                e404="Unknown model",
            ),
        },
    )
    async def model_token_search(
        self,
        state: State,
        model: Model,
        terms: IndexQuery,
        limit: TokenSearchLimit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Token search over the whole-model index (top/bottom examples and N2G graphs), each hit
        naming the entries it matched and their source (examples, graph or both)."""
        store = _state(state)

        def compute() -> dict:
            ref = model_ref(store, model)
            return searched(
                lambda: token_search.search(store, ref, terms, limit, offset),
                ref.meta,
                limit=limit,
                offset=offset,
            )

        return await answer(store, compute)

    @get(
        "/{model:str}/neuron2graph-predict/{layer:str}/{neuron:str}",
        operation_id="neuron2graphPredict",
        name="api:n2g-predict",
        summary="A neuron's N2G-predicted activation over your text",
        responses={
            200: success(PredictionResponse | Missing, "Prediction"),
            **ERRORS,
        },
    )
    async def neuron2graph_predict(
        self, state: State, model: Model, layer: Layer, neuron: Neuron, text: Text
    ) -> Response:
        """The graph is the simulator: no model runs, only the stored tokenizer and trie."""
        store = _state(state)

        def compute() -> dict:
            ref = neuron_ref(store, model, layer, neuron)
            return envelope(lambda: n2g.predict(store, ref, text), ref.model.meta)

        return await answer(store, compute)

    @get(
        "/{model:str}/explanation-search",
        operation_id="explanationSearch",
        name="api:explanation-search",
        summary="Search neuron explanations",
        responses={
            200: success(ExplanationSearchResponse | Missing, "Matches"),
            **errors(e400="Empty, over-long or malformed query", e404="Unknown model"),
        },
    )
    async def explanation_search(
        self,
        state: State,
        model: Model,
        q: SearchText,
        limit: SearchLimit = 20,
        offset: SearchOffset = 0,
        mode: SearchMode = "hybrid",
    ) -> Response:
        """Search over a model's explanations by words and meaning, best match first, paginated."""
        store = _state(state)

        def compute() -> dict:
            ref = model_ref(store, model)
            return searched(lambda: search.search(store, ref, q, limit, offset, mode), ref.meta)

        return await answer(store, compute)
