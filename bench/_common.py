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


PAGE_SERVICES = ("neuroscope", "quantile_examples", "activation_stats", "logit_effects",
                 "neuron_explainer")  # fmt: skip
"""What the UI's neuron page needs, one request each (issue 14's realistic mix)."""

PAGE_MIX_LUA = """
math.randomseed(%(seed)d)
local L, N, M = %(layers)d, %(neurons)d, "%(model)s"
local services = {%(services)s}
local i, layer, neuron = 0, 0, 0
request = function()
  if i %% #services == 0 then
    layer, neuron = math.random(0, L - 1), math.random(0, N - 1)
  end
  local s = services[i %% #services + 1]
  i = i + 1
  return wrk.format("GET", "/api/" .. M .. "/" .. s .. "/" .. layer .. "/" .. neuron)
end
"""


def page_mix_script(model: str, layers: int, neurons: int, seed: int = 0) -> str:
    """A wrk script: random neurons over every layer, each asked for every PAGE_SERVICES."""
    import tempfile

    services = ",".join(f'"{s}"' for s in PAGE_SERVICES)
    text = PAGE_MIX_LUA % {"seed": seed, "layers": layers, "neurons": neurons, "model": model,
                           "services": services}  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(text)
    return f.name


OTHER_MODEL = "bench-other"


def _write_other_model(root: str, model: str, stop, commits) -> None:
    """Keep writing a second model into the served tables, one (table, layer) per commit, as a
    pipeline materializing another model does: every commit bumps the tables' versions."""
    import itertools

    import polars as pl

    from dd_assets import storage
    from dd_assets.tables import EXPLANATIONS, LOGIT_EFFECTS, NEURON_EXAMPLES, NEURON_STATS

    tables = (NEURON_STATS, LOGIT_EFFECTS, EXPLANATIONS, NEURON_EXAMPLES)
    reader = storage.TableReader(root, NEURON_STATS)
    reader.refresh()
    parts = reader.read_partition_values() or []
    layers = sorted({int(p["layer"]) for p in parts if p.get("model") == model})
    for layer, table in itertools.product(itertools.cycle(layers or [0]), tables):
        if stop.is_set():
            return
        rows = storage.read(root, table, model, [layer])
        rows = rows.with_columns(pl.lit(OTHER_MODEL).alias("model"))
        storage.write_partition(root, table, rows, OTHER_MODEL, [layer])
        with commits.get_lock():
            commits.value += 1


@contextmanager
def other_model_writes(root: str, model: str):
    """A background process writing another model into `root` (a copy: it is rewritten);
    yields a function returning the number of commits so far."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    stop, commits = ctx.Event(), ctx.Value("i", 0)
    proc = ctx.Process(target=_write_other_model, args=(root, model, stop, commits), daemon=True)
    proc.start()
    try:
        yield lambda: commits.value
    finally:
        stop.set()
        proc.join(timeout=120)
        if proc.is_alive():
            proc.terminate()


def server_rss_mb() -> float:
    """Resident memory of the `deepdecipher serve` processes this script started, in MiB."""
    import psutil

    servers = [
        p for p in psutil.Process().children(recursive=True)
        if "deepdecipher.cli" in " ".join(p.cmdline())
    ]  # fmt: skip
    return sum(p.memory_info().rss for p in servers) / 2**20
