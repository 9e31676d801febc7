"""The search routes over a whole model's indexes vs the trivial /health route, in one run.

    .venv/bin/python bench/search.py                   # default model, data from ./data
    .venv/bin/python bench/search.py --requests 1000 --routes token-search,explanation-search

DeepDecipher reloaded its whole index on every search ("can take up to 30 seconds"); ours are
built once per table version and kept in memory. Starts ``deepdecipher serve`` (default settings)
on a free 127.0.0.1 port and, per route, times the first request (the index build), then sends
one-at-a-time requests (the latency a person waits) interleaved with ``/health``:

- ``token-search``: the whole-model token index (every neuron's examples and the N2G graphs):
  single tokens weighted by how common they are, rare tokens, two-term intersections and
  ``activating:``/``negative:``/``important:`` filters, all drawn from the index itself;
- ``neuron2graph-search``: DeepDecipher's graph-only token search, queries drawn the same way;
- ``explanation-search``: hybrid BM25 + embedding ranking (the default), and BM25 alone, over
  phrases and words a user types (the query embedding is cached per distinct query, so half the
  queries are new to the server).

Prints p50/p99 of each route and of /health, their ratio, and the server's resident memory after
each index is built. Goal: p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import httpx
import psutil
from _common import local_server, pct

from dd_assets import storage
from dd_assets.settings import data_root
from dd_assets.tables import N2G_TOKEN_INDEX, TOKEN_INDEX

ROUTES = ("token-search", "neuron2graph-search", "explanation-search", "explanation-search-bm25")
PHRASES = [
    "closing brackets", "opening parenthesis", "python keywords", "import statements",
    "newline", "numbers", "function definitions", "self", "def", "return values", "commas",
    "indentation", "string quotes", "the", "error handling", "equals sign", "dates and years",
]  # fmt: skip


def _escaped(tokens: list[str]) -> list[str]:
    return [t.replace("\\", "\\\\").replace(",", "\\,").replace("\n", "\\n").replace("\t", "\\t")
            for t in tokens]  # fmt: skip


def token_queries(model: str, table, kinds: list[str], n: int, seed: int) -> list[str]:
    index = storage.read(data_root(), table, model, columns=["token"])
    if index.height == 0:
        raise SystemExit(f"no {table.name} rows: run `deepdecipher materialize` first")
    rng = random.Random(seed)
    # One row per (token, kind, neuron): common tokens recur.
    entries = _escaped([t for t in index["token"].to_list() if t.strip() or t])
    distinct = sorted(set(entries))
    out = []
    for i in range(n):
        form = i % 4
        if form == 0:
            out.append(f"any:{rng.choice(entries)}")
        elif form == 1:
            out.append(f"any:{rng.choice(distinct)}")
        elif form == 2:
            out.append(f"any:{rng.choice(entries)},any:{rng.choice(entries)}")
        else:
            out.append(f"{rng.choice(kinds)}:{rng.choice(entries)}")
    return out


def explanation_queries(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    # Half repeat a common phrase (cached query vector), half are new to the server.
    return [rng.choice(PHRASES) if i % 2 else f"{rng.choice(PHRASES)} {i}" for i in range(n)]


def timed(client: httpx.Client, path: str, **params) -> float:
    start = time.perf_counter()
    r = client.get(path, params=params)
    elapsed = (time.perf_counter() - start) * 1e3
    r.raise_for_status()
    return elapsed


def server_rss_mib(base: str) -> float:
    """Resident memory of the process listening on `base`'s port."""
    port = int(base.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return psutil.Process(conn.pid).memory_info().rss / 2**20
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--requests", type=int, default=500, help="per route")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--routes", default=",".join(ROUTES))
    args = p.parse_args()
    n, m = args.requests, args.model
    plans: dict[str, tuple[str, str, Callable[[], list[str]], dict]] = {
        "token-search": (
            "token-search", "query",
            lambda: token_queries(m, TOKEN_INDEX, ["activating", "negative", "important"], n,
                                  args.seed), {"limit": 100}),
        "neuron2graph-search": (
            "neuron2graph-search", "query",
            lambda: token_queries(m, N2G_TOKEN_INDEX, ["activating", "important"], n, args.seed),
            {"limit": 100}),
        "explanation-search": (
            "explanation-search", "q", lambda: explanation_queries(n, args.seed), {"limit": 20}),
        "explanation-search-bm25": (
            "explanation-search", "q", lambda: explanation_queries(n, args.seed),
            {"limit": 20, "mode": "bm25"}),
    }  # fmt: skip
    chosen = [r for r in args.routes.split(",") if r]
    with local_server() as base, httpx.Client(base_url=base, timeout=120) as client:
        print(f"{m}: {n} queries per route, one connection, 127.0.0.1, default settings; "
              f"server RSS at start {server_rss_mib(base):.0f} MiB")  # fmt: skip
        for name in chosen:
            route, param, make, extra = plans[name]
            path = f"/api/{m}/{route}"
            qs = make()
            start = time.perf_counter()
            first = client.get(path, params={param: qs[0], **extra})
            build = time.perf_counter() - start
            first.raise_for_status()
            health, search, hits = [], [], 0
            for q in qs:  # interleaved, so both see the same machine state
                health.append(timed(client, "/health"))
                search.append(timed(client, path, **{param: q, **extra}))
            for q in qs[:100]:
                hits += client.get(path, params={param: q, **extra}).json()["total"] > 0
            ranking = first.json().get("ranking", "")
            print(f"{name}{f' ({ranking})' if ranking else ''}: first request (index build) "
                  f"{build:.2f} s, server RSS now {server_rss_mib(base):.0f} MiB, "
                  f"{hits}/100 sampled queries hit")  # fmt: skip
            for label, xs in (("/health", health), (name, search)):
                print(f"  {label:<24} p50 {pct(xs, 0.5):6.2f} ms   p99 {pct(xs, 0.99):6.2f} ms")
            print(f"  ratio route/health: p50 {pct(search, 0.5) / pct(health, 0.5):.2f}, "
                  f"p99 {pct(search, 0.99) / pct(health, 0.99):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
