"""A short, bounded load test in CI: many concurrent clients, zero errors (bench/load.py is the
long version with wrk)."""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from tests.api.test_live import running_server

CONNECTIONS, SECONDS = 32, 5.0
SERVICES = [
    "neuroscope", "quantile_examples", "activation_stats", "logit_effects", "neuron_explainer",
    "neuron2graph",  # every live tiny neuron has a graph
    "all", "ui",
]  # fmt: skip
"""Services at neuron level; "ui" is the web UI's neuron page."""
SEARCHES = ["tokens", "promotes", "after tokens"]
TOKENS = ["the", "def", "return", "self", "of"]


async def drive(base: str) -> tuple[int, list[int], list[float]]:
    rng = random.Random(0)
    statuses: list[int] = []
    latencies: list[float] = []
    deadline = time.monotonic() + SECONDS

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            if rng.random() < 0.1:
                path = f"/api/tiny/explanation-search?q={rng.choice(SEARCHES)}&limit=10"
            elif rng.random() < 0.1:
                path = f"/api/tiny/neuron2graph-search?query=any:{rng.choice(TOKENS)}"
            elif rng.random() < 0.05:
                path = f"/api/tiny/neuron2graph-predict/{rng.randrange(2)}/{rng.randrange(96)}?text=a+b"
            else:
                service = rng.choice(SERVICES)
                prefix = "/viz/tiny" if service == "ui" else f"/api/tiny/{service}"
                path = f"{prefix}/{rng.randrange(2)}/{rng.randrange(96)}"
            start = time.perf_counter()
            r = await client.get(path)
            latencies.append(time.perf_counter() - start)
            statuses.append(r.status_code)

    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(CONNECTIONS)))
    return len(statuses), statuses, latencies


def test_concurrent_clients_get_no_errors(tiny):
    env = {"DEEPDECIPHER_DATA_ROOT": tiny.root, "DEEPDECIPHER_REGISTRY": str(tiny.registry)}
    with running_server(env) as base:
        total, statuses, latencies = asyncio.run(drive(base))
    latencies.sort()
    print(
        f"{total} requests in {SECONDS:.0f} s over {CONNECTIONS} connections, "
        f"p50 {latencies[len(latencies) // 2] * 1e3:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1e3:.1f} ms"
    )
    assert total > 100
    assert set(statuses) == {200}
