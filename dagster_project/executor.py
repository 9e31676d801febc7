"""The executor, chosen by the environment: Celery workers across machines, or Dagster's default.

With ``DEEPDECIPHER_CELERY_BROKER=redis://host:6379/0`` every step of every run becomes a Celery
task (``dagster-celery``) taken by whichever worker is free, on any machine that reaches the
broker, the Dagster instance (PostgreSQL, ``DAGSTER_PG_URL``) and the data root (object storage).
Steps tagged ``dagster-celery/queue`` go to that queue only (GPU workers listen on ``gpu``). Without
the variable, runs use Dagster's default executor (one process per step on this machine).
"""

from __future__ import annotations

import os

import dagster as dg

STEP_RETRIES = {"enabled": {}}
"""Dagster's retry mode: a step that raises (as opposed to a lost worker) is retried per its
`RetryPolicy`."""


def celery_broker() -> str:
    return os.environ.get("DEEPDECIPHER_CELERY_BROKER", "").strip()


def celery_config(broker: str) -> dict:
    """The executor's config; the broker doubles as the result backend."""
    backend = os.environ.get("DEEPDECIPHER_CELERY_BACKEND", "").strip() or broker
    return {"broker": broker, "backend": backend, "retries": STEP_RETRIES}


def executor_from_env() -> dg.ExecutorDefinition | None:
    broker = celery_broker()
    if not broker:
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config(broker))
