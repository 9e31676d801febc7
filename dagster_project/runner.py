"""Materialize registry models in this process, as Dagster runs recorded in a Dagster instance.

Used by ``deepdecipher materialize`` and by the tests. It does what the sensors do in a deployed
Dagster (register partitions, run the model-level job, then each layer), but synchronously, so
a CLI user gets a progress bar and an exit code.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from dagster_project.jobs import ALL_ASSETS, LAYER_ASSETS, MODEL_ASSETS
from dagster_project.resources import build_resources
from dd_assets import storage
from dd_assets.partitions import layer_key, layer_partitions, model_partitions
from dd_assets.registry import load_registry
from dd_assets.tables import MODEL_METADATA

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class MaterializeReport:
    model_runs: list[str] = field(default_factory=list)
    layer_runs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _ensure_partitions(instance: dg.DagsterInstance, name: str, keys: list[str]) -> None:
    missing = [k for k in keys if k not in instance.get_dynamic_partitions(name)]
    if missing:
        instance.add_dynamic_partitions(name, missing)


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
    """Materialize the model-level assets, then every layer, of each selected model.

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
    for name in names:
        _ensure_partitions(instance, model_partitions.name, [name])
        done = instance.get_materialized_partitions(dg.AssetKey("model_metadata"))
        if force or name not in done:
            on_stage(f"[{name}] model-level assets: tokens, activation scan, Neuroscope examples")
            dg.materialize(
                ALL_ASSETS,
                selection=MODEL_ASSETS,
                partition_key=name,
                instance=instance,
                resources=resources,
                run_config=run_config,
            )
            report.model_runs.append(name)
        else:
            report.skipped.append(name)
        n_layers = int(storage.read(data_root, MODEL_METADATA, name)["num_layers"][0])
        _ensure_partitions(instance, layer_partitions.name, [str(i) for i in range(n_layers)])
        # A layer is done when every per-layer asset has it: a newly added asset still runs.
        done_layers: set[str] | None = None
        for asset in LAYER_ASSETS:
            have = {str(k) for k in instance.get_materialized_partitions(asset.key)}
            done_layers = have if done_layers is None else done_layers & have
        done_layers = done_layers or set()
        keys = [layer_key(name, i) for i in range(n_layers)]
        todo = [k for k in keys if force or str(k) not in done_layers]
        for key in layer_iter(todo, desc=f"[{name}] per-layer assets", unit="layer"):
            dg.materialize(
                ALL_ASSETS,
                selection=LAYER_ASSETS,
                partition_key=key,
                instance=instance,
                resources=resources,
                run_config=run_config,
            )
            report.layer_runs.append(str(key))
    return report
