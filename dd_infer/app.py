"""The inference service's HTTP app (Litestar, served by uvicorn on a unix socket or loopback).

Routes (internal: the API's `dd_api.api.inference` client is the only caller):

- ``POST /v1/trace`` ``{model, text, layer, neuron, timeout?}``: the neuron's activation at each
  token of the text (BOS first), rounded like the served Neuroscope activations.
- ``POST /v1/peaks`` ``{model, text, layers?, timeout?}``: for every neuron of the layers (all by
  default), its largest activation over the text after BOS and the token where it occurs.
- ``GET /health``: device, loaded and loading models, queue length.

Errors are JSON ``{"status_code", "detail"}``: 400 bad text, 404 unknown model or index,
503 loading / busy / failed (with Retry-After), 504 past the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
import orjson
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State

from dd_assets.methods.live import PeakQuery, TraceQuery
from dd_infer.batcher import Batcher
from dd_infer.errors import BadRequest, DDError, NotFound, TimedOut, Unavailable
from dd_infer.pool import LiveModel, ModelPool
from dd_infer.settings import MAX_TEXT_CHARS, InferSettings


class TraceBody(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    text: str
    layer: int
    neuron: int
    timeout: float | None = None


class PeaksBody(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    text: str
    layers: list[int] | None = None
    timeout: float | None = None


def _json(payload: object) -> Response:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, media_type="application/json", status_code=200)


def _encode(live: LiveModel, text: str) -> list[int]:
    if not text:
        raise BadRequest("text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise BadRequest(f"text is limited to {MAX_TEXT_CHARS} characters, got {len(text)}")
    ids = live.encode(text)
    if len(ids) > live.n_ctx:
        raise BadRequest(
            f"text is {len(ids)} tokens with BOS; model {live.spec.name!r} has a context of "
            f"{live.n_ctx} tokens"
        )
    if len(ids) < 2:
        raise BadRequest("text has no tokens")
    return ids


def _check_layer(live: LiveModel, layer: int) -> None:
    if not 0 <= layer < live.n_layers:
        raise NotFound(f"layer {layer} is out of range: the model has {live.n_layers} layers")


async def _answer(state: State, live: LiveModel, query, timeout: float | None):
    """Queue the query and wait for its batch, at most the timeout."""
    limit = state.settings.timeout if timeout is None else min(timeout, state.settings.timeout)
    future = state.batcher.submit(live, query)
    try:
        return await asyncio.wait_for(future, limit)
    except TimeoutError:
        raise TimedOut(f"inference took longer than {limit:g} s") from None
    except Exception as exc:  # the forward pass itself failed
        raise Unavailable(f"inference failed: {type(exc).__name__}: {exc}", 5) from exc


@post("/v1/trace", status_code=200)
async def trace(state: State, data: TraceBody) -> Response:
    live = state.pool.get(data.model)
    _check_layer(live, data.layer)
    if not 0 <= data.neuron < live.d_mlp:
        raise NotFound(f"neuron {data.neuron} is out of range: a layer has {live.d_mlp}")
    ids = _encode(live, data.text)
    acts = await _answer(state, live, TraceQuery(ids, data.layer, data.neuron), data.timeout)
    return _json(
        {
            "token_ids": ids,
            "tokens": live.token_strings(ids),
            "activations": acts,
            "n_ctx": live.n_ctx,
        }
    )


@post("/v1/peaks", status_code=200)
async def peaks(state: State, data: PeaksBody) -> Response:
    live = state.pool.get(data.model)
    layers = list(range(live.n_layers)) if data.layers is None else data.layers
    for layer in layers:
        _check_layer(live, layer)
    ids = _encode(live, data.text)
    result = await _answer(state, live, PeakQuery(ids, tuple(layers)), data.timeout)
    return _json(
        {
            "token_ids": ids,
            "tokens": live.token_strings(ids),
            "layers": list(result.layers),
            "peak": result.values,
            "peak_token_index": result.token_index,
        }
    )


@get("/health", sync_to_thread=False)
def health(state: State) -> dict:
    return {
        "status": "ok",
        **state.pool.status(),
        "pending": state.batcher.pending,
        "max_pending": state.batcher.max_pending,
        "batches": state.batcher.batches,
        "batched_requests": state.batcher.batched_requests,
    }


def _error(_: Request, exc: DDError) -> Response:
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = {"status_code": exc.status_code, "detail": exc.detail}
    return Response(body, status_code=exc.status_code, headers=headers)


def create_app(settings: InferSettings | None = None) -> Litestar:
    settings = settings or InferSettings()
    state = State({"settings": settings, "pool": ModelPool(settings)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        batcher = app.state.batcher = Batcher(settings.max_pending, settings.max_batch_tokens)
        task = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            task.cancel()
            batcher.close()

    return Litestar(
        route_handlers=[trace, peaks, health],
        state=state,
        lifespan=[lifespan],
        exception_handlers={DDError: _error},
        openapi_config=None,
    )
