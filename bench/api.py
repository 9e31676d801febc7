"""A neuron page's API requests vs a trivial endpoint, same server, same run, on 127.0.0.1.

    apt-get install -y wrk     # optional; without it a Python load generator is used
    DEEPDECIPHER_DATA_ROOT=... DEEPDECIPHER_REGISTRY=... \\
        .venv/bin/python bench/api.py --model smollm2-135m --seconds 10 --connections 16

Starts ``deepdecipher serve`` with DEFAULT settings on a free local port over a copy of the data
root (the copy is rewritten in the second phase), warms it by reading each layer once, then
alternates ``/health`` (no I/O) with the realistic neuron-page mix: random neurons over all
layers, one request each for neuroscope, quantile_examples, activation_stats, logit_effects and
neuron_explainer. It prints req/s, p50 and p99 of each and the req/s ratio, first on a quiet
server, then while a background process writes another model into the same tables (every commit
bumps the tables' versions, as materializing another model does). Goal of issue 14: ratio >= 0.5
and p99 < 20 ms at 16 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time

import httpx
from _common import (
    PAGE_SERVICES,
    local_server,
    other_model_writes,
    page_mix_script,
    run_wrk,
    server_rss_mb,
)


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


def measure(base, args, tool, targets) -> dict[str, dict]:
    """Alternate the targets `repeat` times (drift on a shared machine hits both alike)."""
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeat):
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
    results["ratio"] = {"median": statistics.median(ratios), "runs": ratios}
    return results


def report(title: str, results: dict) -> None:
    print(title)
    for name, r in results.items():
        if name == "ratio":
            continue
        print(f"  {name:<22} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  "
              f"p99 {r['p99']:6.2f} ms  non-200 {r['errors']:.0f}")  # fmt: skip
    ratio = results["ratio"]
    spread = ", ".join(f"{r:.3f}" for r in ratio["runs"])
    print(f"  ratio mix / health req/s: {ratio['median']:.3f} (runs: {spread})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--repeat", type=int, default=3, help="alternate the two loads; report medians")
    p.add_argument("--workers", type=int, default=1, help="server worker processes")
    p.add_argument("--no-writes", action="store_true", help="skip the phase under table writes")
    args = p.parse_args()
    tool = ("wrk" if shutil.which("wrk") else "python") if args.tool == "auto" else args.tool
    source = os.environ.get("DEEPDECIPHER_DATA_ROOT", "data")

    with tempfile.TemporaryDirectory(prefix="dd-bench-") as tmp:
        root = os.path.join(tmp, "data")
        copied = time.perf_counter()
        shutil.copytree(source, root)  # the served root is rewritten below: never the original
        print(f"copied {source} in {time.perf_counter() - copied:.1f} s")
        with local_server(args.workers, DEEPDECIPHER_DATA_ROOT=root) as base:
            meta = httpx.get(f"{base}/api/{args.model}/metadata", timeout=60).json()["data"]
            layers, neurons = meta["num_layers"], meta["layer_size"]
            warm = time.perf_counter()
            for _ in range(2 * args.workers):  # each worker has its own cache: reach most
                for layer in range(layers):
                    for service in PAGE_SERVICES:
                        httpx.get(f"{base}/api/{args.model}/{service}/{layer}/0", timeout=120)
            print(f"warm-up, every layer of {len(PAGE_SERVICES)} services: "
                  f"{time.perf_counter() - warm:.1f} s; server RSS {server_rss_mb():.0f} MiB")  # fmt: skip
            rng = random.Random(0)
            page: list[str] = []

            def page_path() -> str:
                if not page:
                    layer, neuron = rng.randrange(layers), rng.randrange(neurons)
                    page.extend(f"/api/{args.model}/{s}/{layer}/{neuron}" for s in PAGE_SERVICES)
                return page.pop()

            script = page_mix_script(args.model, layers, neurons)
            targets = [
                ("trivial /health", f"{base}/health", None, lambda: "/health"),
                ("neuron-page mix", f"{base}/", script, page_path),
            ]
            header = (f"load: {tool}, {args.connections} connections, {args.seconds} s x "
                      f"{args.repeat} runs each (medians), 127.0.0.1, {args.workers} worker(s), "
                      "default settings")  # fmt: skip
            print(header)
            report("quiet server:", measure(base, args, tool, targets))
            print(f"  server RSS {server_rss_mb():.0f} MiB")
            if not args.no_writes:
                with other_model_writes(root, args.model) as commits:
                    started = time.perf_counter()
                    results = measure(base, args, tool, targets)
                    rate = commits() / (time.perf_counter() - started)
                report(f"while another model is written into the same tables "
                       f"({rate:.2f} commits/s):", results)  # fmt: skip
                print(f"  server RSS {server_rss_mb():.0f} MiB")
            size = len(httpx.get(f"{base}/api/{args.model}/neuroscope/0/0").content)
            print(f"  neuroscope neuron response: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
