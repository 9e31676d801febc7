"""Every process the CLI starts stops with it: `up` on SIGTERM, `serve --workers 2` on SIGINT.

The issue's trace: `deepdecipher up` stopped with SIGTERM killed `dagster dev` after 20 s and left
its code server, webserver and daemon running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from tests.distributed.servers import REPO, free_port

pytestmark = pytest.mark.distributed


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode} before {url} answered"
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deepdecipher.cli", *args],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _stop_and_check(proc: subprocess.Popen, sig: int, at_least: int) -> float:
    descendants = psutil.Process(proc.pid).children(recursive=True)
    names = sorted(" ".join(p.cmdline()[1:4]) for p in _alive(descendants))
    print(f"{len(descendants)} descendants: {names}")
    assert len(descendants) >= at_least, names
    start = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=90)
    left = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = _alive(descendants)
        if not left:
            break
        time.sleep(0.2)
    took = time.monotonic() - start
    for p in left:  # do not leave them behind even when the test fails
        p.kill()
    assert not left, f"outlived the CLI: {[p.cmdline() for p in left]}"
    return took


def test_up_stops_dagster_and_the_api_on_sigterm(tiny, data_copy, tmp_path):
    port, ui_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEEPDECIPHER_DATA_ROOT": data_copy,
        "DEEPDECIPHER_REGISTRY": str(tiny.registry),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    env = {
        k: v for k, v in env.items() if k not in ("DAGSTER_PG_URL", "DEEPDECIPHER_CELERY_BROKER")
    }
    proc = _cli(env, "up", "--port", str(port), "--ui-port", str(ui_port))
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc)
        _wait_http(f"http://127.0.0.1:{ui_port}/server_info", proc)
        # The API, `dagster dev`, and the webserver, daemon and code server it starts.
        took = _stop_and_check(proc, signal.SIGTERM, at_least=4)
        print(f"`up` and all its children stopped {took:.1f} s after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_with_workers_stops_on_sigint(tiny):
    port = free_port()
    env = {
        **os.environ,
        "DEEPDECIPHER_DATA_ROOT": tiny.root,
        "DEEPDECIPHER_REGISTRY": str(tiny.registry),
    }
    proc = _cli(env, "serve", "--port", str(port), "--workers", "2")
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc)
        took = _stop_and_check(proc, signal.SIGINT, at_least=2)
        print(f"`serve --workers 2` stopped {took:.1f} s after SIGINT")
    finally:
        if proc.poll() is None:
            proc.kill()
