"""The inference service's errors: each carries its HTTP status (and, for 503, a retry hint)."""

from __future__ import annotations


class InferError(Exception):
    status_code = 500

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class BadText(InferError):
    """Empty text, or longer than the character limit or the model's context."""

    status_code = 400


class UnknownModel(InferError):
    status_code = 404


class Unavailable(InferError):
    """Busy (queue full), still loading, or the model failed to load: retrying may succeed."""

    status_code = 503


class TimedOut(InferError):
    status_code = 504
