"""The API's client of the inference service (``dd_infer``): HTTP over a unix socket or loopback.

It imports no torch. The service's 400/404 become the API's own errors; a service that is down,
starting, loading a model or busy is a 503 with ``Retry-After``; one that does not answer within
the timeout is a 504. Every other route is unaffected, since only the live routes call this.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from litestar.exceptions import HTTPException

from dd_api.query.errors import BadRequest, NotFound

MAX_LIVE_QUERY = 24576
"""Query-string bytes the live routes accept: 2,000 characters of any script, percent-encoded."""
LIVE_ROUTES = ("activations", "text-search")
GRACE_SECONDS = 5.0
"""The HTTP timeout is the service's timeout plus this, so the service answers 504 itself."""


def query_limit(path: str, default: int) -> int:
    """The query-string limit of a path: larger for the live routes, which take a text."""
    parts = path.split("/", 4)  # "", "api", model, route, ...
    return MAX_LIVE_QUERY if len(parts) > 3 and parts[3] in LIVE_ROUTES else default


class LiveUnavailable(HTTPException):
    status_code = 503


class LiveTimeout(HTTPException):
    status_code = 504


class InferenceClient:
    """Calls the inference service; its answers and failures as the API's errors."""

    def __init__(self, url: str | None, timeout: float) -> None:
        self.url = url or None
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        """One pooled client per event loop (tests run apps on several loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            assert self.url is not None
            timeout = httpx.Timeout(self.timeout + GRACE_SECONDS, connect=2.0)
            if self.url.startswith("unix:"):
                transport = httpx.AsyncHTTPTransport(uds=self.url.removeprefix("unix:"))
                self._client = httpx.AsyncClient(
                    transport=transport, base_url="http://dd-infer", timeout=timeout
                )
            else:
                self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout)
            self._loop = loop
        return self._client

    async def call(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.url is None:
            raise LiveUnavailable(
                "live inference is off: `deepdecipher serve` starts it unless --no-inference "
                "(or set DEEPDECIPHER_INFERENCE_URL)"
            )
        try:
            response = await self._http().post(route, json={**body, "timeout": self.timeout})
        except httpx.TimeoutException:
            raise LiveTimeout(f"inference did not answer within {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise LiveUnavailable(
                f"the inference process is not running or still starting ({type(exc).__name__})",
                headers={"Retry-After": "2"},
            ) from None
        if response.status_code == 200:
            return orjson.loads(response.content)
        try:
            detail = str(response.json()["detail"])
        except (ValueError, KeyError, TypeError):
            detail = f"inference process answered HTTP {response.status_code}"
        status = response.status_code
        if status == 400:
            raise BadRequest(detail)
        if status == 404:
            raise NotFound(detail)
        if status == 504:
            raise LiveTimeout(detail)
        retry = response.headers.get("Retry-After", "2")
        raise LiveUnavailable(detail, headers={"Retry-After": retry})
