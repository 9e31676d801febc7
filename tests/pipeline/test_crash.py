"""A materialization killed with SIGKILL loses nothing, and the API keeps answering identically
while a run rewrites the partitions it serves; re-running converges to the same rows."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.tables import DATASET_TOKENS, TABLES

REPO = Path(__file__).resolve().parents[2]
PATHS = [
    "/api",
    "/api/tiny/neuroscope/0/3",
    "/api/tiny/neuroscope/1",
    "/api/tiny/all/1/95",
    "/api/tiny/activation_stats/0/7",
    "/api/tiny/logit_effects/1/0",
]


def start_run(root: str, registry: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    cmd = [sys.executable, "-m", "deepdecipher.cli", "--data-root", root, "--registry",
           str(registry), "materialize", "--force"]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def watch(client: TestClient, proc: subprocess.Popen, expected: list, until=None) -> int:
    """Query every path until the run ends (or `until()` holds); all answers must be `expected`."""
    checked = 0
    while proc.poll() is None and not (until and until()):
        answers = [client.get(p) for p in PATHS]
        assert [a.status_code for a in answers] == [200] * len(PATHS)
        assert [a.json() for a in answers] == expected
        checked += 1
    return checked


def counts(root: str) -> dict[str, int]:
    return {name: storage.read(root, t, "tiny").height for name, t in TABLES.items()}


def test_killed_run_and_rewrite_under_load(tiny, tmp_path, monkeypatch):
    root = str(tmp_path / "data")
    shutil.copytree(tiny.root, root)
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    rows_before = counts(root)
    with TestClient(create_app(ApiSettings(data_root=root, refresh_seconds=0))) as client:
        expected = [client.get(p).json() for p in PATHS]

        # 1. SIGKILL a run once it has started writing (its first table has a new version).
        tokens_version = storage.TableReader(root, DATASET_TOKENS).refresh()
        run = start_run(root, tiny.registry, tmp_path / "home1")
        wrote = lambda: storage.TableReader(root, DATASET_TOKENS).refresh() > tokens_version  # noqa: E731
        watch(client, run, expected, until=wrote)
        assert run.poll() is None, run.stderr.read().decode()[-2000:]
        time.sleep(1.0)  # into the activation scan
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert [client.get(p).json() for p in PATHS] == expected
        assert counts(root) == rows_before

        # 2. A full re-run while the API is queried continuously: every answer identical.
        run = start_run(root, tiny.registry, tmp_path / "home2")
        checked = watch(client, run, expected)
        assert run.returncode == 0, run.stderr.read().decode()[-2000:]
        print(f"{checked} rounds of {len(PATHS)} requests during the rewrite, all identical")
        assert checked > 0
        assert counts(root) == rows_before  # replaced, not appended
        assert [client.get(p).json() for p in PATHS] == expected
