"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads `defs` from here."""

import dagster as dg

from dagster_project.executor import executor_from_env
from dagster_project.jobs import ALL_ASSETS, layer_job, model_job, summary_job
from dagster_project.resources import build_resources
from dagster_project.sensors import layer_sensor, registry_sensor, summary_sensor

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[model_job, layer_job, summary_job],
    sensors=[registry_sensor, layer_sensor, summary_sensor],
    resources=build_resources(),
    executor=executor_from_env(),
)


def model_assets_job() -> dg.JobDefinition:
    """The resolved jobs, by module-level functions: what `dg.reconstructable` needs to rebuild a
    job in a Celery worker on another machine."""
    return defs.resolve_job_def(model_job.name)


def layer_assets_job() -> dg.JobDefinition:
    return defs.resolve_job_def(layer_job.name)


def summary_assets_job() -> dg.JobDefinition:
    return defs.resolve_job_def(summary_job.name)
