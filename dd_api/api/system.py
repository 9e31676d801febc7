"""Liveness, the request guard, and DeepDecipher's documentation URLs."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.response import Redirect

from dd_api.api.inference import query_limit

MAX_URL_PART = 2048  # path and query string, each; longer requests get a JSON 414
DOCS = "/schema/swagger"


def guard_request(request: Request) -> Response | None:
    """Refuse over-long URLs (uvicorn itself cuts off past ~8 KiB) and OPTIONS requests that are
    not CORS preflights (the CORS middleware answers those before they get here)."""
    path, query = request.scope["path"], request.scope["query_string"]
    max_query = query_limit(path, MAX_URL_PART)
    if len(path) > MAX_URL_PART or len(query) > max_query:
        detail = f"URL too long: the path is limited to {MAX_URL_PART} bytes, the query string to {max_query}"
        return Response({"status_code": 414, "detail": detail}, status_code=414)
    if request.method == "OPTIONS":
        body = {"status_code": 405, "detail": "read-only API: only GET is allowed"}
        return Response(body, status_code=405, headers={"Allow": "GET"})
    return None


@get("/health", operation_id="health", summary="Liveness", sync_to_thread=False, tags=["system"])
def health() -> dict[str, str]:
    """Answers without touching storage (the baseline of bench/api)."""
    return {"status": "ok"}


@get("/doc", include_in_schema=False, sync_to_thread=False)
def doc() -> Redirect:
    """DeepDecipher's frontend links its "Docs" to /doc: the interactive docs."""
    return Redirect(DOCS, status_code=302)


@get("/doc/openapi.json", include_in_schema=False, sync_to_thread=False)
def doc_schema(request: Request) -> Response:
    """The OpenAPI document, also where DeepDecipher's frontend looks for it."""
    return Response(request.app.openapi_schema.to_schema(), media_type="application/json")
