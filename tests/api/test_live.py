"""The API as a real process on a real socket, and while the pipeline rewrites its tables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import polars as pl
import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.tables import NEURON_EXAMPLES, NEURON_STATS

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_api_process_never_imports_torch_or_dagster(api_env):
    code = (
        "import sys, time; t = time.perf_counter(); from dd_api.app import create_app; "
        "create_app(); print(round(time.perf_counter() - t, 2)); "
        "assert 'torch' not in sys.modules and 'dagster' not in sys.modules, 'heavy import'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    print(f"API import + create_app: {out.stdout.strip()} s")


@contextmanager
def running_server(env: dict[str, str]):
    """`deepdecipher serve` as a real process on a free port; yields its base URL."""
    with server_process(env) as (base, _):
        yield base


@contextmanager
def server_process(env: dict[str, str], args: tuple[str, ...] = ()):
    """`deepdecipher serve` as a real process on a free port; yields its base URL and process."""
    port = free_port()
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "deepdecipher.cli", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env)
    base = f"http://127.0.0.1:{port}"
    try:
        start = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "server exited"
            assert time.monotonic() - start < 60, "server did not start"
            time.sleep(0.1)
        print(f"server answered after {time.monotonic() - start:.2f} s")
        yield base, proc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_real_socket(tiny):
    env = {"DEEPDECIPHER_DATA_ROOT": tiny.root, "DEEPDECIPHER_REGISTRY": str(tiny.registry)}
    with running_server(env) as base:
        r = httpx.get(f"{base}/api/tiny/neuroscope/0/7")
        assert r.status_code == 200 and len(r.json()["data"]["texts"]) == 5
        r = httpx.get(f"{base}/api/tiny/neuroscope/0/x")
        assert r.status_code == 400 and r.json()["status_code"] == 400
        r = httpx.delete(f"{base}/api/tiny/neuroscope/0/7")
        assert r.status_code == 405


def test_new_delta_version_is_served_without_restart(tiny, data_copy, monkeypatch):
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    settings = ApiSettings(data_root=data_copy, refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        before = client.get("/api/tiny/activation_stats/0/4").json()["data"]["max"]
        layer0 = storage.read(data_copy, NEURON_STATS, "tiny", [0])
        bumped = layer0.with_columns(pl.col("max") + 1.0)
        storage.write_partition(data_copy, NEURON_STATS, bumped, "tiny", [0])
        after = client.get("/api/tiny/activation_stats/0/4").json()["data"]["max"]
        assert after == pytest.approx(before + 1.0, abs=1e-5)


WRITER = """
import sys, polars as pl
from dd_assets import storage
from dd_assets.tables import NEURON_EXAMPLES
root, marker = sys.argv[1], sys.argv[2]
n = 400_000
frame = pl.DataFrame({
    "model": ["tiny"] * n, "layer": [0] * n, "neuron": list(range(n)), "kind": ["top"] * n,
    "rank": [0] * n, "band": [""] * n, "doc_index": [0] * n,
    "activations": [[float(i % 97)] * 64 for i in range(n)],
    "max_activation": [1.0] * n, "min_activation": [0.0] * n,
    "max_activating_token_index": [1] * n,
}, schema=NEURON_EXAMPLES.schema)
open(marker, "w").close()
storage.write_partition(root, NEURON_EXAMPLES, frame, "tiny", [0])
print("committed")
"""


def test_killed_write_leaves_previous_version_served(tiny, data_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    settings = ApiSettings(data_root=data_copy, refresh_seconds=0)
    paths = ["/api/tiny/neuroscope/0/3", "/api/tiny/neuroscope/0", "/api/tiny/all/0/95"]
    with TestClient(create_app(settings)) as client:
        before = [client.get(p).json() for p in paths]
        version = storage.TableReader(data_copy, NEURON_EXAMPLES).refresh()
        marker = tmp_path / "writing"
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, data_copy, str(marker)], cwd=REPO,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        while not marker.exists():
            assert proc.poll() is None, "writer died before writing"
            time.sleep(0.05)
        time.sleep(0.5)  # inside write_deltalake: parquet files are being written
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert b"committed" not in proc.stdout.read(), "write finished before the kill"
        assert storage.TableReader(data_copy, NEURON_EXAMPLES).refresh() == version
        assert [client.get(p).json() for p in paths] == before
        # Re-running the interrupted write for real converges to the same rows, no duplicates.
        rows = storage.read(data_copy, NEURON_EXAMPLES, "tiny", [0])
        storage.write_partition(data_copy, NEURON_EXAMPLES, rows, "tiny", [0])
        again = storage.read(data_copy, NEURON_EXAMPLES, "tiny", [0])
        assert again.height == rows.height
        assert [client.get(p).json() for p in paths] == before


def test_examples_never_pair_with_a_rewritten_dataset(tiny, data_copy, monkeypatch):
    """Between a re-tokenized dataset and its new examples, the API answers 503, not wrong data."""
    from dd_assets.tables import DATASET_TOKENS

    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    settings = ApiSettings(data_root=data_copy, refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/tiny/neuroscope/0/3").status_code == 200
        tokens = storage.read(data_copy, DATASET_TOKENS, "tiny")
        shorter = tokens.with_columns(
            pl.col("token_ids").list.head(12), pl.col("tokens").list.head(12)
        )
        storage.write_partition(data_copy, DATASET_TOKENS, shorter, "tiny")
        r = client.get("/api/tiny/neuroscope/0/3")
        assert r.status_code == 503 and "retry" in r.json()["detail"]
        storage.write_partition(data_copy, DATASET_TOKENS, tokens, "tiny")
        assert client.get("/api/tiny/neuroscope/0/3").status_code == 200
