"""Helpers shared by the HTTP benchmarks: a local server process and wrk."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank), e.g. pct(latencies, 0.99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(workers: int = 1, **env: str):
    """`deepdecipher serve` on a free 127.0.0.1 port; yields the base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepdecipher.cli", "serve", "--port", str(port),
         "--workers", str(workers)],
        cwd=REPO, env={**os.environ, **env},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def parse_wrk(out: str) -> dict:
    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
    }


def run_wrk(url: str, seconds: int, connections: int, script: str | None = None) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    return parse_wrk(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
