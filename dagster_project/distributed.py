"""Runs whose steps go to Celery workers: reconstructable jobs, one run per partition.

`dg.materialize` executes in this process; a step on another machine must rebuild its job from
code instead, so these runs go through `dg.execute_job` on the module-level job functions of
`dagster_project.definitions`. Workers read their settings (data root, registry, Dagster instance)
from their own environment, which must name the same data root, registry and ``DAGSTER_PG_URL``.
"""

from __future__ import annotations

import dagster as dg

from dagster_project import definitions


def _job_function(name: str):
    return {
        definitions.model_job.name: definitions.model_assets_job,
        definitions.layer_job.name: definitions.layer_assets_job,
        definitions.summary_job.name: definitions.summary_assets_job,
    }[name]


def execute_partition(
    instance: dg.DagsterInstance,
    job_name: str,
    selection: list,
    partition_key: str,
    run_config: dict | None = None,
) -> str:
    """Run `selection` (asset definitions) of job `job_name` for one partition; return the run id.

    Raises if the run fails. Each call gets its own instance object, so calls may run in threads.
    """
    fn = _job_function(job_name)
    partitions_def = fn().partitions_def
    tags = partitions_def.get_tags_for_partition_key(partition_key)
    keys = [k for a in selection for k in a.keys]
    with (
        dg.DagsterInstance.from_ref(instance.get_ref()) as own,
        dg.execute_job(
            dg.reconstructable(fn),
            instance=own,
            run_config=run_config or {},
            tags=tags,
            asset_selection=keys,
        ) as result,
    ):
        if not result.success:
            raise RuntimeError(f"run {result.run_id} ({job_name}, {partition_key}) failed")
        return result.run_id
