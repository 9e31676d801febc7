"""Errors as JSON ``{"status_code", "detail"}``, translated from the query layer in one place."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException

from dd_api.query.errors import DDError


def dd_error_handler(_: Request, exc: DDError) -> Response:
    return Response(
        {"status_code": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
    )


def http_error_handler(_: Request, exc: HTTPException) -> Response:
    """Litestar's own errors (no route, wrong method, bad parameter) in the same JSON shape."""
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such route; see /schema for the API"
    body = {"status_code": exc.status_code, "detail": detail}
    return Response(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def internal_error_handler(_: Request, exc: Exception) -> Response:
    logging.getLogger("dd_api").error("internal error", exc_info=exc)
    return Response({"status_code": 500, "detail": "internal server error"}, status_code=500)


HANDLERS = {
    DDError: dd_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
