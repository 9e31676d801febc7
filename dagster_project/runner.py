"""Materialize registry models in this process, as Dagster runs recorded in a Dagster instance.

Used by ``deepdecipher materialize`` and by the tests. It does what the sensors do in a deployed
Dagster (register partitions, run the model-level job, then each layer), but synchronously, so
a CLI user gets a progress bar and an exit code.

With ``DEEPDECIPHER_CELERY_BROKER`` set, each partition is a run whose steps execute on Celery
workers (`dagster_project.distributed`), and the layers of a model run concurrently, up to
``DEEPDECIPHER_PARALLEL_RUNS`` (default 4) at once.
"""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dagster as dg

from dagster_project.executor import celery_broker
from dagster_project.jobs import (
    ALL_ASSETS,
    LAYER_ASSETS,
    MODEL_ASSETS,
    SUMMARY_ASSETS,
    layer_job,
    model_job,
    summary_job,
)
from dagster_project.resources import build_resources
from dd_assets import storage
from dd_assets.partitions import layer_key, layer_partitions, model_partitions
from dd_assets.registry import load_registry
from dd_assets.tables import MODEL_METADATA

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Model-level assets that read only the tokenizer or the tokens: when one is missing (an asset
# added to an existing install) it runs alone instead of rerunning the scan.
OFF_THE_SCAN_CHAIN = {"model_tokenizer", "token_description_vectors", "window_embeddings"}


@dataclass
class MaterializeReport:
    model_runs: list[str] = field(default_factory=list)
    layer_runs: list[str] = field(default_factory=list)
    summary_runs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _ensure_partitions(instance: dg.DagsterInstance, name: str, keys: list[str]) -> None:
    missing = [k for k in keys if k not in instance.get_dynamic_partitions(name)]
    if missing:
        instance.add_dynamic_partitions(name, missing)


def _missing(instance: dg.DagsterInstance, assets: list, key: str, force: bool) -> list:
    """The assets (of `assets`) with some output not yet materialized for partition `key`."""
    if force:
        return list(assets)
    return [
        a for a in assets if any(key not in instance.get_materialized_partitions(k) for k in a.keys)
    ]


def _names(assets: list) -> list[str]:
    return [k.path[-1] for a in assets for k in a.keys]


def materialize_models(
    instance: dg.DagsterInstance,
    registry_path: str,
    data_root: str,
    models: list[str] | None = None,
    force: bool = False,
    on_stage: Callable[[str], None] = lambda _msg: None,
    layer_iter: Callable = lambda it, **_kw: it,
    quiet: bool = True,
) -> MaterializeReport:
    """Materialize the model-level assets, every layer, then the model-wide indexes of each model.

    Partitions already materialized are skipped unless `force`. Unknown model names raise
    KeyError before any work starts.
    """
    registry = load_registry(registry_path)
    names = models or registry.names
    for name in names:
        registry[name]
    resources = build_resources(data_root, registry_path)
    run_config = QUIET if quiet else None
    report = MaterializeReport()

    distributed = bool(celery_broker())

    def _run(selection: list, key, job: str) -> None:
        if distributed:
            from dagster_project.distributed import execute_partition

            execute_partition(instance, job, selection, str(key), run_config)
            return
        dg.materialize(
            ALL_ASSETS,
            selection=selection,
            partition_key=key,
            instance=instance,
            resources=resources,
            run_config=run_config,
        )

    for name in names:
        _ensure_partitions(instance, model_partitions.name, [name])
        missing = _missing(instance, MODEL_ASSETS, name, force)
        if missing:
            # New asset kinds added to an existing install run alone; anything the scan feeds
            # reruns the whole chain.
            core = [a for a in MODEL_ASSETS if not set(_names([a])) & OFF_THE_SCAN_CHAIN]
            selection = MODEL_ASSETS if any(a in core for a in missing) else missing
            on_stage(f"[{name}] model-level assets: {', '.join(_names(selection))}")
            _run(selection, name, model_job.name)
            report.model_runs.append(name)
        else:
            report.skipped.append(name)
        n_layers = int(storage.read(data_root, MODEL_METADATA, name)["num_layers"][0])
        _ensure_partitions(instance, layer_partitions.name, [str(i) for i in range(n_layers)])
        todo = []
        for i in range(n_layers):
            key = layer_key(name, i)
            assets = _missing(instance, LAYER_ASSETS, str(key), force)
            if assets:
                todo.append((key, assets))
        desc = f"[{name}] per-layer assets"
        if distributed:  # one run per layer, concurrently: the workers share their steps
            parallel = int(os.environ.get("DEEPDECIPHER_PARALLEL_RUNS", "4"))
            with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                runs = pool.map(lambda item: _run(item[1], item[0], layer_job.name), todo)
                for _ in layer_iter(runs, total=len(todo), desc=desc, unit="layer"):
                    pass
            report.layer_runs.extend(str(key) for key, _ in todo)
        else:
            for key, assets in layer_iter(todo, desc=desc, unit="layer"):
                _run(assets, key, layer_job.name)
                report.layer_runs.append(str(key))
        if todo or _missing(instance, SUMMARY_ASSETS, name, force):
            on_stage(f"[{name}] model-wide indexes: N2G token search, similar neurons")
            _run(SUMMARY_ASSETS, name, summary_job.name)
            report.summary_runs.append(name)
    return report
