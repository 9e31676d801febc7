"""Sensors that keep Dagster's partitions in step with the model registry.

`registry_sensor` adds a dynamic partition for each new registry entry and requests the
model-level job for it (only for it: other models are untouched), and drops the partitions of
models removed from the registry. `layer_sensor` waits until a model's metadata is materialized,
which is when its layer count is known, then adds layer keys and requests each missing
(model, layer) partition of the per-layer assets. `summary_sensor` rebuilds a model's model-wide
indexes (token search, similar neurons) once every layer has its N2G graphs, and again whenever a
layer's graphs are rewritten.

No sensor requests what a queued or running run will already materialize (`in_flight`): without
that, a layer whose first two assets landed while its run was still going was requested again for
the third, and N2G ran twice.
"""

import dagster as dg

from dagster_project.jobs import LAYER_ASSETS, SUMMARY_ASSETS, layer_job, model_job, summary_job
from dd_assets.partitions import layer_key, layer_partitions, model_partitions
from dd_assets.resources import RegistryResource

IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.MANAGED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def in_flight(instance: dg.DagsterInstance, job_name: str, assets: list) -> dict[str, set]:
    """Partition key -> asset keys that queued or running runs of `job_name` will materialize.

    A run without an asset selection materializes the whole job (`assets`).
    """
    everything = {k for a in assets for k in a.keys}
    planned: dict[str, set] = {}
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT))
    for run in runs:
        key = run.tags.get("dagster/partition")
        if key is not None:
            planned.setdefault(key, set()).update(run.asset_selection or everything)
    return planned


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
    # Per asset, so that an asset added to an existing deployment still gets requested: the run
    # key names the assets it materializes, and the run selects only those.
    done = {
        a.key: {str(k) for k in instance.get_materialized_partitions(a.key)} for a in LAYER_ASSETS
    }
    known_layers = set(instance.get_dynamic_partitions(layer_partitions.name))
    planned = in_flight(instance, layer_job.name, LAYER_ASSETS)
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
            coming = planned.get(str(key), set())
            missing = [
                asset
                for asset, have_it in done.items()
                if str(key) not in have_it and asset not in coming
            ]
            if missing:
                label = "+".join(k.to_user_string() for k in missing)
                runs.append(
                    dg.RunRequest(
                        partition_key=key, run_key=f"layer:{key}:{label}", asset_selection=missing
                    )
                )
    add = [layer_partitions.build_add_request(sorted(new_layers, key=int))] if new_layers else []
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=add)


@dg.sensor(
    job=layer_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def layer_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource):
    """Request every missing (model, layer) partition once the model's layer count is known."""
    return layer_requests(context.instance, registry)


def summary_requests(instance: dg.DagsterInstance, registry: RegistryResource) -> dg.SensorResult:
    graphs = dg.AssetKey("n2g_graphs")
    summary = SUMMARY_ASSETS[0].key
    done = {str(k) for k in instance.get_materialized_partitions(graphs)}
    building = in_flight(instance, summary_job.name, SUMMARY_ASSETS)
    runs = []
    for model in registry.load().names:
        if model in building:  # one summary run per model at a time; the next tick looks again
            continue
        layers = [str(layer_key(model, i)) for i in range(_num_layers(instance, model) or 0)]
        if not layers or not all(k in done for k in layers):
            continue
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=graphs, asset_partitions=layers), limit=1
        ).records
        built = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=summary, asset_partitions=[model]), limit=1
        ).records
        if built and built[0].storage_id > latest[0].storage_id:
            continue
        runs.append(
            dg.RunRequest(partition_key=model, run_key=f"summary:{model}:{latest[0].storage_id}")
        )
    return dg.SensorResult(run_requests=runs)


def _num_layers(instance: dg.DagsterInstance, model: str) -> int | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("model_metadata"), asset_partitions=[model]),
        limit=1,
    ).records
    entry = records[0].asset_materialization if records else None
    if entry is None or "num_layers" not in entry.metadata:
        return None
    return int(entry.metadata["num_layers"].value)


@dg.sensor(
    job=summary_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def summary_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource):
    """Rebuild a model's token index and similar neurons after its layers' graphs change."""
    return summary_requests(context.instance, registry)
