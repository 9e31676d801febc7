"""Sensors that keep Dagster's partitions in step with the model registry.

`registry_sensor` adds a dynamic partition for each new registry entry and requests the
model-level job for it (only for it: other models are untouched), and drops the partitions of
models removed from the registry. `layer_sensor` waits until a model's metadata is materialized,
which is when its layer count is known, then adds layer keys and requests each missing
(model, layer) partition of the per-layer assets.
"""

import dagster as dg

from dagster_project.jobs import LAYER_ASSETS, layer_job, model_job
from dd_assets.partitions import layer_key, layer_partitions, model_partitions
from dd_assets.resources import RegistryResource


def registry_requests(instance: dg.DagsterInstance, registry: RegistryResource) -> dg.SensorResult:
    names = registry.load().names
    known = set(instance.get_dynamic_partitions(model_partitions.name))
    new = [n for n in names if n not in known]
    gone = sorted(known - set(names))
    requests = []
    if new:
        requests.append(model_partitions.build_add_request(new))
    if gone:
        requests.append(model_partitions.build_delete_request(gone))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=n, run_key=f"model:{n}") for n in new],
        dynamic_partitions_requests=requests,
    )


@dg.sensor(
    job=model_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def registry_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource):
    """Add new registry models as partitions and materialize them; drop removed ones."""
    return registry_requests(context.instance, registry)


def layer_requests(instance: dg.DagsterInstance, registry: RegistryResource) -> dg.SensorResult:
    names = set(registry.load().names)
    metadata_key = dg.AssetKey("model_metadata")
    have = instance.get_materialized_partitions(metadata_key)
    # A layer is done when every per-layer asset has it.
    done: set[str] | None = None
    for asset in LAYER_ASSETS:
        have_layer = {str(k) for k in instance.get_materialized_partitions(asset.key)}
        done = have_layer if done is None else done & have_layer
    done = done or set()
    known_layers = set(instance.get_dynamic_partitions(layer_partitions.name))
    new_layers: set[str] = set()
    runs = []
    for model in sorted(names & set(have)):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=metadata_key, asset_partitions=[model]), limit=1
        ).records
        entry = records[0].asset_materialization if records else None
        if entry is None or "num_layers" not in entry.metadata:
            continue
        for layer in range(int(entry.metadata["num_layers"].value)):
            key = layer_key(model, layer)
            if str(layer) not in known_layers:
                new_layers.add(str(layer))
            if str(key) not in done:
                runs.append(dg.RunRequest(partition_key=key, run_key=f"layer:{key}"))
    add = [layer_partitions.build_add_request(sorted(new_layers, key=int))] if new_layers else []
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=add)


@dg.sensor(
    job=layer_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def layer_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource):
    """Request every missing (model, layer) partition once the model's layer count is known."""
    return layer_requests(context.instance, registry)
