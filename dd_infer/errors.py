"""The inference service's errors: the API's hierarchy (so both answer the same JSON), plus a
retry hint on 503 and the 504 of a request past its timeout."""

from __future__ import annotations

from dd_api.query.errors import BadRequest, DDError, NotFound
from dd_api.query.errors import Unavailable as _Unavailable

__all__ = ["BadRequest", "DDError", "NotFound", "TimedOut", "Unavailable"]


class Unavailable(_Unavailable):
    """Busy (queue full), still loading, or the model failed to load: retrying may succeed."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TimedOut(DDError):
    status_code = 504
