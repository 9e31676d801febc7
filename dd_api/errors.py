"""One error hierarchy for the API, translated to JSON responses in one place."""

from __future__ import annotations

from litestar import Request, Response
from litestar.exceptions import HTTPException

MAX_ECHO = 80


def echo(value: object) -> str:
    """A user-supplied value, shortened for safe inclusion in an error message."""
    text = str(value)
    return repr(text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "...")


class DDError(Exception):
    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DDError):
    status_code = 404


class BadRequest(DDError):
    status_code = 400


class Unavailable(DDError):
    """The data is being rewritten under us (e.g. a changed dataset); retrying will succeed."""

    status_code = 503


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
    import logging

    logging.getLogger("dd_api").error("internal error", exc_info=exc)
    return Response({"status_code": 500, "detail": "internal server error"}, status_code=500)
