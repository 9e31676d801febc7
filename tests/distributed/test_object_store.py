"""Delta tables on SeaweedFS's S3 gateway: concurrent commits from several processes."""

from __future__ import annotations

import subprocess
import sys
import time

import polars as pl
import pytest
from deltalake import DeltaTable

from dd_assets import storage
from dd_assets.tables import NEURON_STATS
from tests.distributed.conftest import BUCKET
from tests.distributed.servers import REPO

pytestmark = pytest.mark.distributed

WRITERS, ROUNDS = 3, 15


def test_parallel_writers_to_one_table_lose_no_commit(stack, monkeypatch):
    root = f"s3://{BUCKET}/parallel-writers"
    env = {**stack.base_env}
    for key, value in env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    start_at = str(time.time() + 8)  # after every writer has imported deltalake
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.distributed.writer",
                root,
                str(layer),
                str(ROUNDS),
                start_at,
            ],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for layer in range(WRITERS)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    uri = storage.table_uri(root, NEURON_STATS)
    table = DeltaTable(uri, storage_options=storage.storage_options(uri))
    history = table.history()
    print(
        f"{WRITERS} writers x {ROUNDS} overwrites: {len(history)} commits, version {table.version()}"
    )
    assert len(history) == table.version() + 1 == WRITERS * ROUNDS  # every commit is in the log
    rows = storage.read(root, NEURON_STATS, "m")
    # Each layer holds exactly its writer's last round: nothing lost, nothing doubled.
    assert rows.group_by("layer").agg(pl.len(), pl.col("max").max()).sort("layer").rows() == [
        (layer, 8, float(ROUNDS)) for layer in range(WRITERS)
    ]
