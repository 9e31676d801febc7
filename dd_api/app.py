"""The Litestar application: the JSON API (``dd_api.api``) and the web UI (``dd_api.ui``), both
over the query layer (``dd_api.query``), assembled by one factory.

Layers, imported in one direction only (tests/test_architecture.py checks it)::

    dd_api.app  ->  dd_api.api (JSON routes)  \\
                ->  dd_api.ui  (HTML pages)    ->  dd_api.query  ->  dd_assets.tables/storage

OpenAPI at ``/schema/openapi.json`` (also ``/doc/openapi.json``, where DeepDecipher's frontend
looks), interactive docs (Swagger UI, served from the installed ``swagger-ui-bundle``, so it works
offline) at ``/schema/swagger`` (``/doc`` redirects there). Errors are JSON
``{"status_code", "detail"}``; docs/api.md has the contract route by route.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path
from threadpoolctl import threadpool_limits

from dd_api.api.controller import ServiceController
from dd_api.api.errors import HANDLERS
from dd_api.api.inference import InferenceClient
from dd_api.api.live import LiveController
from dd_api.api.schema_plugin import ClosedStructs
from dd_api.api.system import doc, doc_schema, guard_request, health
from dd_api.query.store import DataStore
from dd_api.settings import ApiSettings, get_settings
from dd_api.ui import template_config, ui_handlers

SWAGGER_ASSETS = "/static/swagger-ui"
GZIP_MIN_BYTES = 2048


def create_app(settings: ApiSettings | None = None) -> Litestar:
    settings = settings or get_settings()
    swagger_assets = create_static_files_router(path=SWAGGER_ASSETS, directories=[swagger_ui_path])
    middleware = []
    if settings.rate_limit_per_minute > 0:
        limit = RateLimitConfig(
            rate_limit=("minute", settings.rate_limit_per_minute), exclude=["/health"]
        )
        middleware.append(limit.middleware)
    return Litestar(
        route_handlers=[
            ServiceController,
            LiveController,
            health,
            doc,
            doc_schema,
            swagger_assets,
            *ui_handlers(),
        ],
        template_config=template_config(),
        middleware=middleware,
        state=State(
            {
                "store": DataStore(settings),
                "settings": settings,
                "inference": InferenceClient(settings.inference_url, settings.inference_timeout),
            }
        ),
        before_request=guard_request,
        on_startup=[lambda: threadpool_limits(settings.blas_threads, user_api="blas")],
        cors_config=CORSConfig(allow_origins=["*"], allow_methods=["GET", "HEAD", "OPTIONS"]),
        # A neuron page's ~300 KB of token spans shrink ~5x for ~3 ms of level-1 gzip.
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=GZIP_MIN_BYTES, gzip_compress_level=1
        ),
        exception_handlers=HANDLERS,
        plugins=[ClosedStructs()],
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
