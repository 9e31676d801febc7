"""Litestar handlers of the web UI (``/viz``), registered by ``create_app`` next to the API.

Pages (all GET, HTML, deep-linkable):

- ``/`` redirects to ``/viz``, the index: one card per model.
- ``/viz/{model}``: neuron chooser, token search (``?token=``), explanation search (``?q=``) and
  each layer's most important neurons. ``/viz/{model}/go?layer=&neuron=`` and
  ``/viz/{model}/random`` redirect to a neuron page.
- ``/viz/{model}/{layer}``: the layer's neurons ranked by activation range, with statistics.
- ``/viz/{model}/{layer}/{neuron}``: the neuron page, every section rendered on the server.

Errors (unknown model, index out of range) are HTML pages with the API's status codes. Pages are
gzipped by the application's compression config; templates build URLs with ``url_for`` (route
reversal) from the route names below.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Annotated, Any

from jinja2 import Environment, FileSystemLoader, pass_context
from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import HTTPException
from litestar.params import Parameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from dd_api.query.errors import BadRequest, DDError
from dd_api.query.refs import layer_ref, model_ref, neuron_ref
from dd_api.query.services import SERVICES
from dd_api.query.store import DataStore
from dd_api.ui import views

HERE = Path(__file__).parent
STATIC_PATH = "/static/ui"
PAGE_SIZE = 100
SEARCH_PAGE = 50
MAX_QUERY = 200
NO_STORE = {"Cache-Control": "no-store"}
API_DOCS = "/schema/swagger"

Offset = Annotated[int, Parameter(ge=0, le=10**9)]
Limit = Annotated[int, Parameter(ge=1, le=2000)]


def _asset_version(name: str) -> str:
    return hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:10]


_ASSET_VERSIONS = {name: _asset_version(name) for name in ("ui.css", "ui.js")}


def _static(name: str) -> str:
    """URL of a static file, versioned by content so browsers may cache it for a long time."""
    return f"{STATIC_PATH}/{name}?v={_ASSET_VERSIONS[name]}"


@pass_context
def _url(context: Any, name: str, **path: object) -> str:
    """Litestar's route reversal for templates: ``url("ui:neuron", model=m, layer=3, neuron=7)``.
    Indices are path segments typed as strings (so malformed ones get our 400), hence ``str``."""
    return context["request"].app.route_reverse(name, **{k: str(v) for k, v in path.items()})


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals.update(static=_static, services=SERVICES, api_docs=API_DOCS, url=_url)
    env.filters["num"] = lambda v, fmt="{:.3g}": "–" if v is None else fmt.format(v)
    return env


def template_config() -> TemplateConfig:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(_environment()))


def _page(started: float, name: str, **context: Any) -> Template:
    """A page; ``Server-Timing`` says how long gathering its data took in the server."""
    took = (time.perf_counter() - started) * 1e3
    return Template(
        template_name=name,
        context=context,
        media_type="text/html; charset=utf-8",
        headers={"Server-Timing": f"app;dur={took:.2f}"},
    )


def html_error(request: Request, exc: Exception) -> Response:
    """UI errors as an HTML page with the same status the API would give."""
    if isinstance(exc, DDError | HTTPException):
        status, detail = exc.status_code, exc.detail
    else:
        logging.getLogger("dd_api.ui").error("internal error", exc_info=exc)
        status, detail = 500, "internal server error"
    engine = request.app.template_engine
    body = engine.get_template("error.html.j2").render(
        status=status, detail=detail, request=request
    )
    return Response(body, status_code=status, media_type="text/html")


def _store(state: State) -> DataStore:
    return state.store


@get("/", include_in_schema=False, sync_to_thread=False)
def root() -> Redirect:
    return Redirect("/viz", status_code=302)


@get("/viz", name="ui:index", include_in_schema=False, sync_to_thread=True)
def index(state: State) -> Template:
    started = time.perf_counter()
    return _page(started, "index.html.j2", models=views.models(_store(state)))


@get("/viz/{model:str}", name="ui:model", include_in_schema=False, sync_to_thread=True)
def model_page(
    state: State, model: str, token: str | None = None, q: str | None = None, offset: Offset = 0
) -> Template:
    started = time.perf_counter()
    store = _store(state)
    ref = model_ref(store, model)
    token_result = expl_result = token_error = expl_error = None
    if token:
        if len(token) > MAX_QUERY:
            token_error = f"query too long (at most {MAX_QUERY} characters)"
        else:
            token_result, token_error = views.token_search(store, ref, token, SEARCH_PAGE, offset)
    if q:
        if len(q) > MAX_QUERY:
            expl_error = f"query too long (at most {MAX_QUERY} characters)"
        else:
            expl_result, expl_error = views.explanation_search(store, ref, q, SEARCH_PAGE, offset)
    available = ref.meta.available_services
    return _page(
        started,
        "model.html.j2",
        **views.model_page(store, ref),
        token=token or "",
        q=q or "",
        offset=offset,
        page=SEARCH_PAGE,
        token_result=token_result,
        token_error=token_error,
        token_available="neuron2graph-search" in available,
        expl_result=expl_result,
        expl_error=expl_error,
        expl_available="explanation-search" in available,
    )


@get("/viz/{model:str}/random", name="ui:random", include_in_schema=False, sync_to_thread=True)
def random_neuron(request: Request, state: State, model: str) -> Redirect:
    layer, neuron = views.random_neuron(model_ref(_store(state), model))
    url = request.app.route_reverse("ui:neuron", model=model, layer=str(layer), neuron=str(neuron))
    return Redirect(url, status_code=302, headers=NO_STORE)


@get("/viz/{model:str}/go", name="ui:go", include_in_schema=False, sync_to_thread=True)
def go(request: Request, state: State, model: str, layer: str = "", neuron: str = "") -> Redirect:
    """The chooser's form target: validate, then redirect to the neuron (or layer) page."""
    store = _store(state)
    if not layer.strip():
        raise BadRequest("choose a layer")
    if not neuron.strip():
        ref = layer_ref(store, model, layer.strip())
        url = request.app.route_reverse("ui:layer", model=model, layer=str(ref.layer))
        return Redirect(url, status_code=302)
    nref = neuron_ref(store, model, layer.strip(), neuron.strip())
    url = request.app.route_reverse(
        "ui:neuron", model=model, layer=str(nref.layer), neuron=str(nref.neuron)
    )
    return Redirect(url, status_code=302)


@get("/viz/{model:str}/{layer:str}", name="ui:layer", include_in_schema=False, sync_to_thread=True)
def layer_page(
    state: State, model: str, layer: str, limit: Limit = PAGE_SIZE, offset: Offset = 0
) -> Template:
    started = time.perf_counter()
    store = _store(state)
    ctx = views.layer_page(store, layer_ref(store, model, layer), limit, offset)
    return _page(started, "layer.html.j2", **ctx)


@get(
    "/viz/{model:str}/{layer:str}/{neuron:str}",
    name="ui:neuron",
    include_in_schema=False,
    sync_to_thread=True,
)
def neuron_page(state: State, model: str, layer: str, neuron: str) -> Template:
    started = time.perf_counter()
    store = _store(state)
    ctx = views.neuron_page(store, neuron_ref(store, model, layer, neuron))
    return _page(started, "neuron.html.j2", **ctx)


@get(
    "/viz/{model:str}/{service:str}/{layer:str}/{neuron:str}",
    include_in_schema=False,
    sync_to_thread=False,
)
def deepdecipher_link(
    request: Request, model: str, service: str, layer: str, neuron: str
) -> Redirect:
    """DeepDecipher's neuron URLs (``/viz/{model}/all/{layer}/{neuron}``) keep working."""
    if service != "all" and service not in SERVICES:
        raise HTTPException(status_code=404, detail=f"no such page: service {service!r}")
    url = request.app.route_reverse("ui:neuron", model=model, layer=layer, neuron=neuron)
    return Redirect(url, status_code=301)


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
