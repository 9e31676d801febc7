"""Neuron2Graph token search over a model's full index vs the trivial /health route.

    .venv/bin/python bench/search.py                   # default model, data from ./data
    .venv/bin/python bench/search.py --requests 1000

DeepDecipher reloaded its whole index on every search ("can take up to 30 seconds"); ours is
built once per table version and kept in memory. Starts ``deepdecipher serve`` on a free
127.0.0.1 port, sends one warm-up search, then one-at-a-time requests (the latency a person waits)
for queries drawn from the index itself: single tokens weighted by how common they are, rare
tokens, two-term intersections and ``activating:``/``important:`` filters. Prints p50/p99 of the
search and of /health in the same run, and their ratio. Goal: search p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import random
import time

import httpx
from _common import local_server, pct

from dd_assets import storage
from dd_assets.settings import data_root
from dd_assets.tables import N2G_TOKEN_INDEX


def queries(model: str, n: int, seed: int) -> list[str]:
    index = storage.read(data_root(), N2G_TOKEN_INDEX, model)
    if index.height == 0:
        raise SystemExit("no n2g_token_index rows: run `deepdecipher materialize` first")
    rng = random.Random(seed)
    # One row per (token, kind, neuron): common tokens recur. Commas are escaped in queries.
    entries = [t.replace(",", "\\,") for t in index["token"].to_list()]
    distinct = sorted(set(entries))
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(f"any:{rng.choice(entries)}")
        elif kind == 1:
            out.append(f"any:{rng.choice(distinct)}")
        elif kind == 2:
            out.append(f"any:{rng.choice(entries)},any:{rng.choice(entries)}")
        else:
            out.append(f"{rng.choice(['activating', 'important'])}:{rng.choice(entries)}")
    return out


def timed(client: httpx.Client, path: str, **params) -> float:
    start = time.perf_counter()
    r = client.get(path, params=params)
    elapsed = (time.perf_counter() - start) * 1e3
    r.raise_for_status()
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    qs = queries(args.model, args.requests, args.seed)
    path = f"/api/{args.model}/neuron2graph-search"
    with local_server() as base, httpx.Client(base_url=base, timeout=60) as client:
        start = time.perf_counter()
        first = client.get(path, params={"query": "any:the"})
        build = (time.perf_counter() - start) * 1e3
        first.raise_for_status()
        health, search = [], []
        for q in qs:  # interleaved, so both see the same machine state
            health.append(timed(client, "/health"))
            search.append(timed(client, path, query=q, limit=100))
        hits = sum(client.get(path, params={"query": q}).json()["total"] > 0 for q in qs[:100])
    print(
        f"{args.model} token search: {len(qs)} queries, one connection, 127.0.0.1 "
        f"(first request, index build included: {build:.0f} ms; {hits}/100 sampled queries hit)"
    )
    for name, xs in (("/health", health), ("neuron2graph-search", search)):
        print(f"  {name:<22} p50 {pct(xs, 0.5):6.2f} ms   p99 {pct(xs, 0.99):6.2f} ms")
    print(
        f"  ratio search/health: p50 {pct(search, 0.5) / pct(health, 0.5):.2f}, "
        f"p99 {pct(search, 0.99) / pct(health, 0.99):.2f}"
    )


if __name__ == "__main__":
    main()
