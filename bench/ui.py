"""Neuron page of the web UI vs the trivial /health route: server time, latency and page weight.

    .venv/bin/python bench/ui.py                       # default model, data from ./data
    DEEPDECIPHER_DATA_ROOT=/path/to/data .venv/bin/python bench/ui.py --requests 300

Starts ``deepdecipher serve`` on a free 127.0.0.1 port, opens one neuron page per layer to warm
the partitions, then requests random neuron pages one after another (one connection: the time a
person waits), each gzipped and uncompressed, and /health the same way. Prints p50/p99 of the client-measured latency and of the
server's own ``Server-Timing`` (data + rendering), the ratio to /health, and the total bytes a
browser downloads for a neuron page: its HTML plus the CSS and JS it references, decoded and on the
wire (pages are gzipped; CSS/JS counted gzipped as a compressing proxy would send them).
Goal: page HTML served in < 50 ms p50.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import statistics
import time

import httpx
from _common import local_server, pct


def timed(
    client: httpx.Client, path: str, encoding: str = "gzip"
) -> tuple[float, float | None, httpx.Response]:
    start = time.perf_counter()
    r = client.get(path, headers={"Accept-Encoding": encoding})
    elapsed = (time.perf_counter() - start) * 1e3
    r.raise_for_status()
    m = re.search(r"dur=([\d.]+)", r.headers.get("server-timing", ""))
    return elapsed, float(m.group(1)) if m else None, r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    with (
        local_server() as base,  # default settings
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        meta = client.get(f"/api/{args.model}/metadata").json()["data"]
        layers, size = meta["num_layers"], meta["layer_size"]
        warm = time.perf_counter()
        for layer in range(layers):
            client.get(f"/viz/{args.model}/{layer}/0").raise_for_status()
        warm = time.perf_counter() - warm
        health = [timed(client, "/health")[0] for _ in range(args.requests)]
        page, server, sizes, wire = [], [], [], []
        plain, plain_server = [], []
        html = ""
        for i in range(args.requests):
            path = f"/viz/{args.model}/{rng.randrange(layers)}/{rng.randrange(size)}"
            # The same page gzipped (what browsers get) and uncompressed, in alternating order.
            for encoding in ("gzip", "identity") if i % 2 else ("identity", "gzip"):
                elapsed, took, r = timed(client, path, encoding)
                if encoding == "identity":
                    plain.append(elapsed)
                    plain_server.append(took or 0.0)
                    continue
                page.append(elapsed)
                if took is not None:
                    server.append(took)
                sizes.append(len(r.content))
                wire.append(r.num_bytes_downloaded)
                html = r.text
        assets = re.findall(r'(?:href|src)="(/static/ui/[^"]+)"', html)
        asset_bytes = {a: client.get(a).content for a in assets}
    mean_html = statistics.mean(sizes)
    total = mean_html + sum(len(b) for b in asset_bytes.values())
    gz_total = statistics.mean(wire) + sum(len(gzip.compress(b)) for b in asset_bytes.values())
    h50, p50 = pct(health, 0.5), pct(page, 0.5)
    print(f"ui: {args.model} ({layers} layers x {size}), {args.requests} sequential requests each, "
          f"127.0.0.1, warm-up {warm:.1f} s for {layers} layers")  # fmt: skip
    print(f"  /health             p50 {h50:7.2f} ms  p99 {pct(health, 0.99):7.2f} ms")
    print(f"  neuron page         p50 {p50:7.2f} ms  p99 {pct(page, 0.99):7.2f} ms  (client)")
    if server:
        print(f"  neuron page server  p50 {pct(server, 0.5):7.2f} ms  "
              f"p99 {pct(server, 0.99):7.2f} ms  (Server-Timing: data + render)")  # fmt: skip
    print(f"  uncompressed page   p50 {pct(plain, 0.5):7.2f} ms  p99 {pct(plain, 0.99):7.2f} ms  "
          f"(client; server p50 {pct(plain_server, 0.5):.2f} ms)")  # fmt: skip
    print(f"  ratio neuron page / health p50: {p50 / h50:.1f}x")
    print(f"  bytes: HTML {mean_html / 1024:.0f} KiB mean (max {max(sizes) / 1024:.0f} KiB) + "
          f"{len(asset_bytes)} assets {sum(len(b) for b in asset_bytes.values()) / 1024:.1f} KiB = "
          f"{total / 1024:.0f} KiB; on the wire (gzip) {gz_total / 1024:.0f} KiB")  # fmt: skip
    print(f"  goal: HTML p50 < 50 ms: {'met' if p50 < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
