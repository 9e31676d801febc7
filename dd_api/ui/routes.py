"""Litestar handlers of the web UI (``/viz``), registered by ``create_app`` next to the API.

Pages (all GET, HTML, deep-linkable):

- ``/`` redirects to ``/viz``, the index: one card per model.
- ``/viz/{model}``: neuron chooser, token search (``?token=``), explanation search (``?q=``) and
  each layer's most important neurons. ``/viz/{model}/go?layer=&neuron=`` and
  ``/viz/{model}/random`` redirect to a neuron page.
- ``/viz/{model}/{layer}``: the layer's neurons ranked by activation range, with statistics.
- ``/viz/{model}/{layer}/{neuron}``: the neuron page, every section rendered on the server.

Errors (unknown model, index out of range) are HTML pages with the API's status codes.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
from pathlib import Path
from typing import Annotated, Any

from jinja2 import Environment, FileSystemLoader
from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import HTTPException
from litestar.params import Parameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from dd_api.errors import BadRequest, DDError
from dd_api.services import SERVICES
from dd_api.ui import views

HERE = Path(__file__).parent
STATIC_PATH = "/static/ui"
PAGE_SIZE = 100
SEARCH_PAGE = 50
MAX_QUERY = 200
NO_STORE = {"Cache-Control": "no-store"}
GZIP_MIN_BYTES = 2048

Offset = Annotated[int, Parameter(ge=0, le=10**9)]
Limit = Annotated[int, Parameter(ge=1, le=2000)]


def _asset_version(name: str) -> str:
    return hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:10]


def _static(name: str) -> str:
    """URL of a static file, versioned by content so browsers may cache it for a long time."""
    return f"{STATIC_PATH}/{name}?v={_ASSET_VERSIONS[name]}"


_ASSET_VERSIONS = {name: _asset_version(name) for name in ("ui.css", "ui.js")}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals.update(static=_static, services=SERVICES, api_docs="/schema/swagger")
    env.filters["num"] = lambda v, fmt="{:.3g}": "–" if v is None else fmt.format(v)
    return env


def template_config() -> TemplateConfig:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(_environment()))


def _page(request: Request, started: float, name: str, **context: Any) -> Response:
    """Render a page, gzipped when the client accepts it (a neuron page's ~300 KB of token spans
    shrink ~5x for ~3 ms of level-1 compression). ``Server-Timing`` says how long data, rendering
    and compression took in the server."""
    body = request.app.template_engine.get_template(name).render(**context).encode()
    headers = {"Vary": "Accept-Encoding"}
    if len(body) > GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    took = (time.perf_counter() - started) * 1e3
    headers["Server-Timing"] = f"app;dur={took:.2f}"
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


def html_error(request: Request, exc: Exception) -> Response:
    """UI errors as an HTML page with the same status the API would give."""
    if isinstance(exc, DDError | HTTPException):
        status, detail = exc.status_code, exc.detail
    else:
        logging.getLogger("dd_api.ui").error("internal error", exc_info=exc)
        status, detail = 500, "internal server error"
    engine = request.app.template_engine
    body = engine.get_template("error.html.j2").render(status=status, detail=detail)
    return Response(body, status_code=status, media_type="text/html")


@get("/", include_in_schema=False, sync_to_thread=False)
def root() -> Redirect:
    return Redirect("/viz", status_code=302)


@get("/viz", name="ui:index", include_in_schema=False, sync_to_thread=False)
def index(request: Request, state: State) -> Response:
    started = time.perf_counter()
    return _page(request, started, "index.html.j2", models=views.models(state.store))


@get("/viz/{model:str}", name="ui:model", include_in_schema=False, sync_to_thread=False)
def model_page(
    request: Request,
    state: State,
    model: str,
    token: str | None = None,
    q: str | None = None,
    offset: Offset = 0,
) -> Response:
    started = time.perf_counter()
    store = state.store
    ctx = views.model_page(store, model)
    token_result = expl_result = None
    token_error = expl_error = None
    token_available = views.token_search_available(store, model)
    expl_available = views.explanation_search_available(store, model)
    if token:
        if len(token) > MAX_QUERY:
            token_error = f"query too long (at most {MAX_QUERY} characters)"
        else:
            try:
                token_result = views.token_search(
                    store, model, views.token_query(token), SEARCH_PAGE, offset
                )
            except DDError as exc:
                token_error = exc.detail
    if q:
        if len(q) > MAX_QUERY:
            expl_error = f"query too long (at most {MAX_QUERY} characters)"
        else:
            try:
                expl_result = views.explanation_search(store, model, q, SEARCH_PAGE, offset)
            except DDError as exc:
                expl_error = exc.detail
    return _page(
        request,
        started,
        "model.html.j2",
        **ctx,
        token=token or "",
        q=q or "",
        offset=offset,
        page=SEARCH_PAGE,
        token_result=token_result,
        token_error=token_error,
        token_available=token_available,
        expl_result=expl_result,
        expl_error=expl_error,
        expl_available=expl_available,
    )


@get("/viz/{model:str}/random", include_in_schema=False, sync_to_thread=False)
def random_neuron(state: State, model: str) -> Redirect:
    meta = views.model_page(state.store, model)["meta"]
    layer, neuron = views.random_neuron(meta)
    return Redirect(f"/viz/{model}/{layer}/{neuron}", status_code=302, headers=NO_STORE)


@get("/viz/{model:str}/go", include_in_schema=False, sync_to_thread=False)
def go(state: State, model: str, layer: str = "", neuron: str = "") -> Redirect:
    """The chooser's form target: validate, then redirect to the neuron (or layer) page."""
    if not layer.strip():
        raise BadRequest("choose a layer")
    if not neuron.strip():
        views.validate(state.store, model, layer.strip(), None)
        return Redirect(f"/viz/{model}/{int(layer)}", status_code=302)
    views.validate(state.store, model, layer.strip(), neuron.strip())
    return Redirect(f"/viz/{model}/{int(layer)}/{int(neuron)}", status_code=302)


@get("/viz/{model:str}/{layer:str}", name="ui:layer", include_in_schema=False, sync_to_thread=False)
def layer_page(
    request: Request,
    state: State,
    model: str,
    layer: str,
    limit: Limit = PAGE_SIZE,
    offset: Offset = 0,
) -> Response:
    started = time.perf_counter()
    ctx = views.layer_page(state.store, model, layer, limit, offset)
    return _page(request, started, "layer.html.j2", **ctx)


@get(
    "/viz/{model:str}/{layer:str}/{neuron:str}",
    name="ui:neuron",
    include_in_schema=False,
    sync_to_thread=False,
)
def neuron_page(request: Request, state: State, model: str, layer: str, neuron: str) -> Response:
    started = time.perf_counter()
    ctx = views.neuron_page(state.store, model, layer, neuron)
    return _page(request, started, "neuron.html.j2", **ctx)


@get(
    "/viz/{model:str}/{service:str}/{layer:str}/{neuron:str}",
    include_in_schema=False,
    sync_to_thread=False,
)
def deepdecipher_link(model: str, service: str, layer: str, neuron: str) -> Redirect:
    """DeepDecipher's neuron URLs (``/viz/{model}/all/{layer}/{neuron}``) keep working."""
    if service != "all" and service not in SERVICES:
        raise HTTPException(status_code=404, detail=f"no such page: service {service!r}")
    return Redirect(f"/viz/{model}/{layer}/{neuron}", status_code=301)


def _ui_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            root,
            index,
            model_page,
            random_neuron,
            go,
            layer_page,
            neuron_page,
            deepdecipher_link,
        ],  # fmt: skip
        exception_handlers={DDError: html_error, HTTPException: html_error, Exception: html_error},
    )


def _static_router() -> Router:
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[HERE / "static"],
        name="ui-static",
        cache_control=CacheControlHeader(max_age=7 * 86400),  # URLs carry a content hash
    )


def ui_handlers() -> list[Router]:
    """Fresh routers for one application: the pages and their static files."""
    return [_ui_router(), _static_router()]
