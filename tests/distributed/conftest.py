"""The distributed stack, started once per module: PostgreSQL, Redis, SeaweedFS, two Celery workers.

`stack.env` is the environment every process of a deployment shares: the Dagster instance on
PostgreSQL, the Celery broker, the S3 credentials and endpoint, the registry of the tiny model.
Each test gets its own database and S3 prefix (`stack.fresh`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deepdecipher import dagster_home
from deepdecipher.supervise import stop_children
from tests.distributed.servers import (
    Postgres,
    Redis,
    SeaweedFS,
    s3_env,
    start_celery_worker,
)

BUCKET = "deepdecipher"


@dataclass
class Stack:
    pg: Postgres
    redis: Redis
    weed: SeaweedFS
    base_env: dict[str, str]
    root: Path
    workers: list[subprocess.Popen] = field(default_factory=list)
    count: int = 0

    def fresh(self, name: str) -> dict[str, str]:
        """Environment for a new deployment: its own Dagster database, home and S3 prefix."""
        self.count += 1
        db = f"{name}_{self.count}"
        home = self.root / db
        env = {
            **self.base_env,
            "DAGSTER_PG_URL": self.pg.create_database(db),
            "DAGSTER_HOME": str(home),
            "DEEPDECIPHER_DATA_ROOT": f"s3://{BUCKET}/{db}",
        }
        os.environ["DAGSTER_PG_URL"] = env["DAGSTER_PG_URL"]
        try:
            dagster_home.prepare(home)
        finally:
            del os.environ["DAGSTER_PG_URL"]
        return env

    def start_workers(self, env: dict[str, str], n: int = 2) -> list[subprocess.Popen]:
        """`n` Celery workers sharing `env` (its instance and data root), one pool process each."""
        self.stop_workers()
        self.workers = [start_celery_worker(f"w{i}", env) for i in range(n)]
        return self.workers

    def stop_workers(self) -> None:
        stop_children(self.workers, grace=10)
        self.workers = []


@pytest.fixture(scope="module")
def stack(tiny) -> Stack:
    pg = Postgres().start()
    redis = Redis().start()
    weed = SeaweedFS().start()
    root = Path(tempfile.mkdtemp(prefix="dd-stack-"))
    try:
        weed.create_bucket(BUCKET)
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER", "DEEPDECIPHER"))
            },
            **s3_env(weed),
            "DEEPDECIPHER_REGISTRY": str(tiny.registry),
            "DEEPDECIPHER_CELERY_BROKER": redis.url,
            "DEEPDECIPHER_DEVICE": "cpu",
            "DEEPDECIPHER_PARALLEL_RUNS": "2",
            "OMP_NUM_THREADS": "1",
        }
        stack = Stack(pg, redis, weed, env, root)
        yield stack
    finally:
        if "stack" in locals():
            stack.stop_workers()
        weed.remove()
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
