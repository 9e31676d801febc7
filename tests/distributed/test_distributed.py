"""The pipeline on a real distributed stack: Dagster on PostgreSQL, Delta tables on SeaweedFS (S3),
layer steps on two Celery worker processes; then faults (a worker killed mid-step, the object
store restarted) and the API over s3:// against the local single-process run.

The tests of this module share one stack and run in order: the clean run, the store restart, the
killed worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import httpx
import polars as pl
import pytest

from dd_assets import storage
from dd_assets.tables import TABLES
from tests.api.test_live import running_server
from tests.distributed.conftest import Stack

pytestmark = pytest.mark.distributed

ROUTES = [
    "/api", "/api/tiny/metadata", "/api/tiny/all/0/3", "/api/tiny/all/1/17", "/api/tiny/all/1",
    "/api/tiny/neuroscope/1", "/api/tiny/activation_stats", "/api/tiny/neuron_explainer",
    "/api/tiny/neuron2graph", "/api/tiny/explanation-search?q=tokens",
    "/api/tiny/neuron2graph-search?query=any:the",
]  # fmt: skip
STATE: dict = {}


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    os.environ["DAGSTER_PG_URL"] = env["DAGSTER_PG_URL"]
    try:
        return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    finally:
        del os.environ["DAGSTER_PG_URL"]


def _materialize(stack: Stack, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deepdecipher.cli", "materialize", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _tables(env: dict[str, str]) -> dict[str, pl.DataFrame]:
    """Every table of the tiny model, sorted on all sortable columns, read with `env`'s S3 settings."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    try:
        out = {}
        for name, spec in TABLES.items():
            df = storage.read(env["DEEPDECIPHER_DATA_ROOT"], spec, "tiny")
            keys = [c for c, t in df.schema.items() if not isinstance(t, pl.List | pl.Struct)]
            out[name] = df.sort(keys)
        return out
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _tables_when_ready(env: dict[str, str], timeout: float = 120) -> dict[str, pl.DataFrame]:
    """`_tables` once the restarted store serves again (its volume server re-registers with the
    master a few seconds after the S3 port opens); errors until then are retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _tables(env)
        except Exception as exc:  # deltalake and object_store raise several kinds
            if time.monotonic() > deadline:
                raise
            print(f"store not ready yet: {type(exc).__name__}: {str(exc)[:200]}")
            time.sleep(2)


def _step_workers(instance: dg.DagsterInstance) -> dict[str, set[tuple[str, int]]]:
    """Worker pid -> the (partition, step) pairs whose STEP_START it logged."""
    ran: dict[str, set[tuple[str, int]]] = {}
    for run in instance.get_runs():
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START):
            event = record.dagster_event
            ran.setdefault(event.pid, set()).add((run.tags["dagster/partition"], event.step_key))
    return ran


def _pool_pids(workers: list[subprocess.Popen]) -> set[int]:
    """Pids of the workers' pool processes (children of each Celery main process)."""
    import psutil

    return {c.pid for w in workers for c in psutil.Process(w.pid).children(recursive=True)}


def test_layers_run_on_two_workers_and_the_api_over_s3_matches_a_local_run(stack, tiny):
    env = stack.fresh("clean")
    workers = stack.start_workers(env, n=2)
    start = time.monotonic()
    proc = _materialize(stack, env)
    out, _ = proc.communicate(timeout=900)
    wall = time.monotonic() - start
    assert proc.returncode == 0, out
    print(f"distributed materialize of 'tiny' (2 layers, 2 Celery workers): {wall:.1f} s")

    ran = _step_workers(_instance(env))
    layer_steps = {pid: {p for p, _ in steps if "|" in p} for pid, steps in ran.items()}
    used = {pid for pid, parts in layer_steps.items() if parts}
    for pid, steps in sorted(ran.items()):
        print(f"worker pid {pid}: {sorted(steps)}")
    assert used <= _pool_pids(workers), "a step ran outside the Celery workers"
    assert len(used) >= 2, f"layer steps ran in one worker only: {layer_steps}"
    assert {p for parts in layer_steps.values() for p in parts} == {"0|tiny", "1|tiny"}

    # The same answers over s3:// as from the local single-process run of the session fixture.
    local_env = {"DEEPDECIPHER_DATA_ROOT": tiny.root, "DEEPDECIPHER_REGISTRY": str(tiny.registry)}
    with running_server(env) as remote, running_server(local_env) as local:
        for route in ROUTES:
            a, b = httpx.get(remote + route, timeout=30), httpx.get(local + route, timeout=30)
            assert a.status_code == b.status_code == 200, route
            assert a.json() == b.json(), route
    STATE["clean"] = env
    STATE["tables"] = _tables(env)
    unwritten = {"n2g_token_index"}
    assert all(df.height for name, df in STATE["tables"].items() if name not in unwritten)


def test_object_store_restart_loses_nothing(stack):
    env = STATE["clean"]
    stack.weed.restart()
    after = _tables_when_ready(env)
    for name, df in STATE["tables"].items():
        assert after[name].equals(df), name
    # A run after the restart rewrites every partition of the same tables: nothing lost or doubled.
    proc = _materialize(stack, env, "--force")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    for name, df in _tables(env).items():
        assert df.equals(STATE["tables"][name]), name


def _wait_for_step(instance: dg.DagsterInstance, step: str, timeout: float = 600) -> int:
    """The pid of the first process that starts `step` in any run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in instance.get_runs():
            for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START):
                if record.dagster_event.step_key == step:
                    return record.dagster_event.pid
        time.sleep(0.05)
    raise TimeoutError(step)


def test_a_worker_killed_mid_step_converges_to_the_clean_data(stack):
    env = stack.fresh("killed")
    stack.start_workers(env, n=2)
    instance = _instance(env)
    proc = _materialize(stack, env)
    pid = _wait_for_step(instance, "n2g_graphs")
    os.kill(pid, signal.SIGKILL)  # the pool process running N2G for one layer dies
    out, _ = proc.communicate(timeout=900)
    failed = [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE]
    print(f"killed pid {pid}: materialize exit {proc.returncode}, {len(failed)} failed run(s)")
    assert proc.returncode != 0 and failed, "the killed step must fail its run"
    # Re-running re-executes what the failed run did not materialize; nothing else.
    again = _materialize(stack, env)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    tables = _tables(env)
    for name, df in STATE["tables"].items():
        assert tables[name].equals(df), name  # no row lost, none duplicated
