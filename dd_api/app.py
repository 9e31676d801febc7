"""The Litestar application: DeepDecipher's routes over deepdecipher's Delta tables.

Routes (all GET, all JSON):

- ``/api``: every served model's metadata.
- ``/api/{model}/{service}``, ``/api/{model}/{service}/{layer}``,
  ``/api/{model}/{service}/{layer}/{neuron}``: one service at model, layer or neuron level,
  wrapped as ``{"data": ..., "metadata": ...}``, or ``{"missing_data_types": [...], "metadata": ...}``
  when the service has no data there yet.
- ``/api/{model}/all[/{layer}[/{neuron}]]``: every service at once.
- ``/health``: liveness, no I/O. OpenAPI at ``/schema/openapi.json``, interactive docs (Swagger UI,
  served from the installed ``swagger-ui-bundle``, so it works offline) at ``/schema/swagger``.

Errors are JSON ``{"status_code", "detail"}``: 404 for unknown names and out-of-range indices,
400 for malformed ones, 405 for other methods.

The web UI (``/viz``, package ``dd_api.ui``) is served by the same application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from litestar import Litestar, Request, Response, Router, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Example
from litestar.params import Parameter
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from dd_api import n2g, token_search
from dd_api.errors import (
    BadRequest,
    DDError,
    NotFound,
    dd_error_handler,
    echo,
    http_error_handler,
    internal_error_handler,
)
from dd_api.search import MAX_QUERY, WORD, search_payload
from dd_api.services import SERVICES, metadata_object, missing_tables
from dd_api.settings import ApiSettings, get_settings
from dd_api.store import DataStore
from dd_assets.registry import NAME_PATTERN
from dd_assets.tables import N2G_GRAPHS, N2G_TOKEN_INDEX, TOKEN_INDEX

MAX_INDEX_DIGITS = 12
MAX_URL_PART = 2048  # path and query string, each; longer requests get a JSON 414
SWAGGER_ASSETS = "/static/swagger-ui"
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


@dataclass
class ErrorBody:
    status_code: int
    detail: str


ERRORS = {
    400: ResponseSpec(ErrorBody, description="Malformed layer or neuron index"),
    404: ResponseSpec(ErrorBody, description="Unknown model or service, or index out of range"),
}
# Path segments are typed as strings and validated in `_index`, so that a malformed index gets our
# 400 with a helpful message; the patterns below only document what is valid (schema_extra is
# not enforced by Litestar).
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
Payload = dict[str, Any]
Limit = Annotated[
    int | None,
    Parameter(ge=1, le=ApiSettings.max_page_size, description="Page size of important_neurons"),
]
Offset = Annotated[int, Parameter(ge=0, le=10**9, description="Offset into important_neurons")]


def json_response(payload: object) -> Response[Payload]:
    """Encode with orjson: payloads carry numpy float32 arrays (per-token activations), which
    orjson writes ~2.4x faster than converting them to Python floats first."""
    body = orjson.dumps(payload, option=JSON_OPTIONS)
    return Response(body, media_type="application/json")  # type: ignore[arg-type]


def guard_request(request: Request) -> Response | None:
    """Refuse over-long URLs (uvicorn itself cuts off past ~8 KiB) and OPTIONS requests that are
    not CORS preflights (the CORS middleware answers those before they get here)."""
    too_long = max(len(request.scope["path"]), len(request.scope["query_string"])) > MAX_URL_PART
    if too_long:
        detail = f"URL too long: path and query string are limited to {MAX_URL_PART} bytes each"
        return Response({"status_code": 414, "detail": detail}, status_code=414)
    if request.method == "OPTIONS":
        body = {"status_code": 405, "detail": "read-only API: only GET is allowed"}
        return Response(body, status_code=405, headers={"Allow": "GET"})
    return None


def _index(what: str, raw: str, bound: int, context: str) -> int:
    """Parse a layer or neuron path segment: 400 if malformed, 404 if out of range."""
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"{what} must be a non-negative integer, got {echo(raw)}")
    if len(raw) > MAX_INDEX_DIGITS or int(raw) >= bound:
        raise NotFound(f"{what} {echo(raw)} is out of range: {context} has {bound} {what}s")
    return int(raw)


def _model(store: DataStore, model: str) -> dict:
    if store.registry().get(model) is None:
        raise NotFound(f"model {echo(model)} not found; GET /api lists the served models")
    return metadata_object(store, model)


def _service(name: str):
    service = SERVICES.get(name)
    if service is None:
        raise NotFound(f"service {echo(name)} not found; services: {sorted(SERVICES)} and 'all'")
    return service


def _resolve(store: DataStore, model: str, layer: str | None, neuron: str | None):
    meta = _model(store, model)
    li = ni = None
    if layer is not None:
        li = _index("layer", layer, meta["num_layers"], f"model {model!r}")
    if neuron is not None:
        ni = _index("neuron", neuron, meta["layer_size"], f"layer {li}")
    return meta, li, ni


def _one(store: DataStore, service, model: str, meta: dict, li: int | None, ni: int | None) -> dict:
    """The envelope for one service at the level given by which indices are set."""
    missing = missing_tables(store, service, model, li)
    if missing:
        return {"missing_data_types": missing, "metadata": meta}
    fn = service.level("model" if li is None else "layer" if ni is None else "neuron")
    args = [a for a in (li, ni) if a is not None]
    data = fn(store, model, *args)
    return {"data": data, "metadata": None if service.name == "metadata" else meta}


def _page(payload: dict, limit: int | None, offset: int) -> dict:
    """Slice the `important_neurons` list of a neuroscope model/layer payload, if asked to."""
    data = payload.get("data")
    if isinstance(data, dict) and "important_neurons" in data:
        ranked = data["important_neurons"]
        end = None if limit is None else offset + limit
        data = {**data, "important_neurons": ranked[offset:end], "total": len(ranked)}
        payload = {**payload, "data": data}
    return payload


def _serve(store: DataStore, model: str, service: str, layer: str | None, neuron: str | None):
    if service == "all":
        meta, li, ni = _resolve(store, model, layer, neuron)
        out = {}
        for name, svc in SERVICES.items():
            try:
                result = _one(store, svc, model, meta, li, ni)
            except NotFound as exc:
                out[name] = {"error": exc.detail}
                continue
            result.pop("metadata", None)
            out[name] = result
        return out
    svc = _service(service)
    meta, li, ni = _resolve(store, model, layer, neuron)
    return _one(store, svc, model, meta, li, ni)


@get("/api", operation_id="listModels", summary="Served models", sync_to_thread=False)
def list_models(state: State) -> Response[Payload]:
    """Metadata of every registered model that has been materialized."""
    store: DataStore = state.store
    models = []
    for name in store.registry().names:
        try:
            models.append(metadata_object(store, name))
        except NotFound:
            continue
    return json_response({"models": models})


@get(
    "/api/{model:str}/{service:str}",
    operation_id="modelService",
    summary="Model-level data",
    sync_to_thread=False,
    responses=ERRORS,
)
def model_service(
    state: State, model: Model, service: Service, limit: Limit = None, offset: Offset = 0
) -> Response[Payload]:
    """One service (or ``all``) at model level, e.g. neuroscope's most important neurons."""
    return json_response(_page(_serve(state.store, model, service, None, None), limit, offset))


@get(
    "/api/{model:str}/{service:str}/{layer:str}",
    operation_id="layerService",
    summary="Layer-level data",
    sync_to_thread=False,
    responses=ERRORS,
)
def layer_service(
    state: State,
    model: Model,
    service: Service,
    layer: Layer,
    limit: Limit = None,
    offset: Offset = 0,
) -> Response[Payload]:
    """One service (or ``all``) at layer level."""
    return json_response(_page(_serve(state.store, model, service, layer, None), limit, offset))


@get(
    "/api/{model:str}/{service:str}/{layer:str}/{neuron:str}",
    operation_id="neuronService",
    summary="Neuron-level data",
    sync_to_thread=False,
    responses=ERRORS,
)
def neuron_service(
    state: State, model: Model, service: Service, layer: Layer, neuron: Neuron
) -> Response[Payload]:
    """One service (or ``all``) for one neuron, e.g. its Neuroscope examples."""
    return json_response(_serve(state.store, model, service, layer, neuron))


_TERM = r"\s*(any|activating|important)\s*:[^,]*[^,\s][^,]*"
SearchQuery = Annotated[
    str,
    Parameter(
        query="query",  # `query` itself is a reserved handler argument in Litestar
        description="type:token[,type:token...], type = any | activating | important; terms "
        "intersect, types within a term unite; tokens are matched trimmed and lower-cased. "
        "Malformed: 400",
        examples=[Example(value="any:the"), Example(value="activating:import,important:from")],
        schema_extra={"pattern": f"^{_TERM}(,{_TERM}){{0,{n2g.MAX_TERMS - 1}}}$"},
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


def _missing(store: DataStore, model: str, meta: dict, tables) -> dict | None:
    absent = [t.name for t in tables if not store.has_model(t, model)]
    return {"missing_data_types": absent, "metadata": meta} if absent else None


@get(
    "/api/{model:str}/neuron2graph-search",
    operation_id="neuron2graphSearch",
    summary="Neurons whose N2G graph holds tokens",
    sync_to_thread=False,
    responses=ERRORS,
)
def neuron2graph_search(
    state: State,
    model: Model,
    terms: SearchQuery,
    limit: TokenSearchLimit = 100,
    offset: Offset = 0,
) -> Response[Payload]:
    """DeepDecipher's token search, ranked by the matched tokens' activation, paginated."""
    store: DataStore = state.store
    meta = _model(store, model)
    missing = _missing(store, model, meta, (N2G_TOKEN_INDEX,))
    if missing:
        n2g.parse_query(terms)  # a malformed query is a 400 even before the index exists
        return json_response(missing)
    result = n2g.search(store, model, terms, limit, offset)
    return json_response({**result, "limit": limit, "offset": offset, "metadata": meta})


# A term as the parser reads it: a type, ':', then characters other than an unescaped comma.
_TOKEN_TERM = r"\s*(any|activating|negative|important)\s*:([^,\\]|\\.)+"
TokenQuery = Annotated[
    str,
    Parameter(
        query="query",
        description="type:token[,type:token...], type = any | activating | negative | important "
        "(any = all three); terms intersect, types within a term unite; tokens are matched "
        "trimmed and lower-cased, whitespace-only tokens as they are (write \\n, \\t, \\, "
        "and \\\\ for a newline, tab, comma and backslash). Malformed: 400",
        examples=[Example(value="any:the"), Example(value="negative:\\n")],
        schema_extra={
            "pattern": f"^{_TOKEN_TERM}(,{_TOKEN_TERM}){{0,{token_search.MAX_TERMS - 1}}}$"
        },
    ),
]


@get(
    "/api/{model:str}/token-search",
    operation_id="tokenSearch",
    summary="Neurons that fire (or go most negative) on tokens, over every neuron",
    sync_to_thread=False,
    responses=ERRORS,
)
def token_search_route(
    state: State,
    model: Model,
    terms: TokenQuery,
    limit: TokenSearchLimit = 100,
    offset: Offset = 0,
) -> Response[Payload]:
    """Token search over the whole-model index (top/bottom examples and N2G graphs), each hit
    naming the entries it matched and their source (examples, graph or both)."""
    store: DataStore = state.store
    meta = _model(store, model)
    token_search.parse_query(terms)  # a malformed query is a 400 even before the index exists
    missing = _missing(store, model, meta, (TOKEN_INDEX,))
    if missing:
        return json_response(missing)
    result = token_search.search(store, model, terms, limit, offset)
    return json_response({**result, "limit": limit, "offset": offset, "metadata": meta})


@get(
    "/api/{model:str}/neuron2graph-predict/{layer:str}/{neuron:str}",
    operation_id="neuron2graphPredict",
    summary="A neuron's N2G-predicted activation over your text",
    sync_to_thread=False,
    responses=ERRORS,
)
def neuron2graph_predict(
    state: State, model: Model, layer: Layer, neuron: Neuron, text: Text
) -> Response[Payload]:
    """The graph is the simulator: no model runs, only the stored tokenizer and trie."""
    store: DataStore = state.store
    meta, li, ni = _resolve(store, model, layer, neuron)
    missing = _missing(store, model, meta, (N2G_GRAPHS,))
    if missing:
        return json_response(missing)
    return json_response({"data": n2g.predict(store, model, li, ni, text), "metadata": meta})


SearchText = Annotated[
    str,
    Parameter(
        description=f"Words to find in explanations (all must occur), at most {MAX_QUERY} characters",
        examples=[Example(value="def")],
        # Documented, checked in `search_payload` (400 with our message): a letter or digit
        # (Unicode, as Python regexes read the pattern), at most MAX_QUERY characters.
        schema_extra={"pattern": WORD.pattern, "max_length": MAX_QUERY},
    ),
]
SearchLimit = Annotated[int, Parameter(ge=1, le=100, description="Results per page")]
SearchOffset = Annotated[int, Parameter(ge=0, le=10**6, description="Results to skip")]


@get(
    "/api/{model:str}/explanation-search",
    operation_id="explanationSearch",
    summary="Search neuron explanations",
    sync_to_thread=False,
    responses={
        400: ResponseSpec(ErrorBody, description="Empty, over-long or malformed query"),
        404: ResponseSpec(ErrorBody, description="Unknown model"),
    },
)
def explanation_search(
    state: State, model: Model, q: SearchText, limit: SearchLimit = 20, offset: SearchOffset = 0
) -> Response[Payload]:
    """Full-text search over a model's explanations, best match first, paginated.

    Returns ``{"data": [{"layer", "neuron", "explanation", "score", "rank", "relevance"}],
    "total", "query", "metadata"}``.
    """
    meta = _model(state.store, model)
    return json_response(search_payload(state.store, model, meta, q, limit, offset))


@get("/health", operation_id="health", summary="Liveness", sync_to_thread=False)
def health() -> dict:
    """Answers without touching storage (the baseline of bench/api)."""
    return {"status": "ok"}


def create_app(settings: ApiSettings | None = None) -> Litestar:
    from dd_api.ui import template_config, ui_handlers  # the web UI (/viz); imports this module

    settings = settings or get_settings()
    store = DataStore(settings)
    api = Router(
        path="/",
        route_handlers=[
            list_models,
            model_service,
            layer_service,
            neuron_service,
            neuron2graph_search,
            token_search_route,
            neuron2graph_predict,
            explanation_search,
            health,
        ],
    )
    swagger_assets = create_static_files_router(path=SWAGGER_ASSETS, directories=[swagger_ui_path])
    middleware = []
    if settings.rate_limit_per_minute > 0:
        limit = RateLimitConfig(
            rate_limit=("minute", settings.rate_limit_per_minute), exclude=["/health"]
        )
        middleware.append(limit.middleware)
    return Litestar(
        route_handlers=[api, swagger_assets, *ui_handlers()],
        template_config=template_config(),
        middleware=middleware,
        state=State({"store": store, "settings": settings}),
        before_request=guard_request,
        cors_config=CORSConfig(allow_origins=["*"], allow_methods=["GET", "HEAD", "OPTIONS"]),
        exception_handlers={
            DDError: dd_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="deepdecipher",
            version="0.1.0",
            description=__doc__,
            path="/schema",
            render_plugins=[
                SwaggerRenderPlugin(
                    js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
                    css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                    standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
                )
            ],
        ),
    )
