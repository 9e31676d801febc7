"""Neuron endpoint vs a trivial endpoint on the same server, same run, bounded load on 127.0.0.1.

    apt-get install -y wrk     # optional; without it a Python load generator is used
    .venv/bin/python bench/api.py --model smollm2-135m --seconds 10 --connections 16

Starts ``deepdecipher serve`` on a free local port over the configured data root, warms every
layer partition, then drives ``/health`` (no I/O) and ``/api/<model>/<service>/<layer>/<neuron>``
with random neurons, and prints req/s, p50 and p99 of each and the req/s ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time

import httpx
from _common import local_server, run_wrk

LUA = """
math.randomseed(%(seed)d)
request = function()
  local l = math.random(0, %(layers)d - 1)
  local n = math.random(0, %(neurons)d - 1)
  return wrk.format("GET", "/api/%(model)s/%(service)s/" .. l .. "/" .. n)
end
"""


async def python_load(base: str, paths, seconds: int, connections: int) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            r = await client.get(paths())
            latencies.append((time.perf_counter() - t) * 1e3)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50": q[49], "p99": q[98], "errors": errors}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--service", default="neuroscope")
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--repeat", type=int, default=3, help="alternate the two loads; report medians")
    p.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = p.parse_args()
    tool = ("wrk" if shutil.which("wrk") else "python") if args.tool == "auto" else args.tool

    with local_server(args.workers, DEEPDECIPHER_CACHE_PARTITIONS="256") as base:
        meta = httpx.get(f"{base}/api/{args.model}/metadata", timeout=30).json()["data"]
        layers, neurons = meta["num_layers"], meta["layer_size"]
        warm = time.perf_counter()
        for _ in range(2 * args.workers):  # each worker has its own cache: reach most of them
            for layer in range(layers):
                httpx.get(f"{base}/api/{args.model}/{args.service}/{layer}/0", timeout=60)
        print(f"warm-up of {layers} layer partitions: {time.perf_counter() - warm:.1f} s")
        neuron_url = f"{base}/api/{args.model}/{args.service}/0/0"
        rng = random.Random(0)

        def neuron_path() -> str:
            layer, neuron = rng.randrange(layers), rng.randrange(neurons)
            return f"/api/{args.model}/{args.service}/{layer}/{neuron}"

        runs: dict[str, list[dict]] = {}
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(LUA % {"seed": 0, "layers": layers, "neurons": neurons, "model": args.model,
                           "service": args.service})  # fmt: skip
        targets = [
            ("trivial /health", f"{base}/health", None, lambda: "/health"),
            (f"neuron {args.service}", neuron_url, f.name, neuron_path),
        ]
        for _ in range(args.repeat):  # alternate, so drift on a shared machine hits both alike
            for name, url, script, paths in targets:
                if tool == "wrk":
                    r = run_wrk(url, args.seconds, args.connections, script)
                else:
                    r = asyncio.run(python_load(base, paths, args.seconds, args.connections))
                runs.setdefault(name, []).append(r)
        results = {
            name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "errors")}
            for name, rs in runs.items()
        }
        ratios = [n["rps"] / t["rps"] for t, n in zip(*runs.values(), strict=True)]
        size = len(httpx.get(neuron_url).content)

    print(
        f"load: {tool}, {args.connections} connections, {args.seconds} s x {args.repeat} runs "
        f"each (medians), 127.0.0.1, {args.workers} server worker(s)"
    )
    for name, r in results.items():
        print(f"  {name:<22} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  "
              f"p99 {r['p99']:6.2f} ms  errors {r['errors']}")  # fmt: skip
    spread = ", ".join(f"{r:.3f}" for r in ratios)
    print(f"  ratio neuron / trivial req/s: {statistics.median(ratios):.3f} (runs: {spread})")
    print(f"  neuron response: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
