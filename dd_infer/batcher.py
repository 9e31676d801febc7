"""A bounded queue of requests, answered in batches: one forward pass per model per round.

Requests are accepted while fewer than `max_pending` are queued or running; past that `submit`
raises Unavailable (503 with Retry-After). One loop takes the oldest request's model and every
queued request of that model, up to `max_batch_tokens` padded tokens, and runs them through one
forward pass in a single worker thread (torch uses the cores itself). A request whose caller gave
up (timeout) is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dd_assets.methods.live import PeakQuery, TraceQuery, run_queries
from dd_infer.errors import Unavailable
from dd_infer.pool import LiveModel

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    model: LiveModel
    query: TraceQuery | PeakQuery
    future: asyncio.Future


class Batcher:
    def __init__(self, max_pending: int, max_batch_tokens: int) -> None:
        self.max_pending = max_pending
        self.max_batch_tokens = max_batch_tokens
        self._queue: deque[Job] = deque()
        self._running = 0
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dd-infer-forward")
        self.batches = 0
        self.batched_requests = 0

    @property
    def pending(self) -> int:
        return len(self._queue) + self._running

    def submit(self, model: LiveModel, query: TraceQuery | PeakQuery) -> asyncio.Future:
        if self.pending >= self.max_pending:
            raise Unavailable(
                f"inference is busy: {self.pending} requests queued or running "
                f"(limit {self.max_pending}); retry shortly",
                retry_after=1,
            )
        future = asyncio.get_running_loop().create_future()
        self._queue.append(Job(model, query, future))
        self._wake.set()
        return future

    def _take(self) -> list[Job]:
        """The oldest live request's model, with as many of its queued requests as fit."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()  # cancelled by a timeout before it ran
        if not self._queue:
            return []
        model = self._queue[0].model
        batch: list[Job] = []
        rest: deque[Job] = deque()
        width = 0
        for job in self._queue:
            if job.future.done():
                continue
            wider = max(width, len(job.query.ids))
            fits = wider * (len(batch) + 1) <= self.max_batch_tokens
            if job.model is model and (fits or not batch):
                batch.append(job)
                width = wider
            else:
                rest.append(job)
        self._queue = rest
        return batch

    async def run(self) -> None:
        """Serve the queue until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while batch := self._take():
                self._running = len(batch)
                model = batch[0].model
                try:
                    results = await loop.run_in_executor(
                        self._executor,
                        run_queries,
                        model.bridge,
                        model.spec.hook,
                        [job.query for job in batch],
                        model.bos_id,
                    )
                except Exception as exc:  # handed to each waiting request, which answers 503
                    log.exception("forward pass failed")
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
                else:
                    self.batches += 1
                    self.batched_requests += len(batch)
                    for job, result in zip(batch, results, strict=True):
                        if not job.future.done():
                            job.future.set_result(result)
                finally:
                    self._running = 0

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
