"""The query layer's exceptions: one small hierarchy, translated to HTTP by the web layer.

``DDError`` subclasses carry the HTTP status they stand for; ``MissingData`` is not an error for
the client: DeepDecipher answers it with 200 ``{"missing_data_types": [...]}``.
"""

from __future__ import annotations

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
    """An unknown model or service, an index out of range, or a level a service does not serve."""

    status_code = 404


class BadRequest(DDError):
    status_code = 400


class Unavailable(DDError):
    """The data is being rewritten under us (e.g. a changed dataset); retrying will succeed."""

    status_code = 503


class MissingData(Exception):
    """A service has no data here yet: names the tables (DeepDecipher's data types) that lack it."""

    def __init__(self, tables: list[str], detail: str) -> None:
        super().__init__(detail)
        self.tables = tables
        self.detail = detail
