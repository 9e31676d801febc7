"""Definitions load; sensors follow the registry; ragged layer counts are handled explicitly."""

from __future__ import annotations

import dagster as dg

from dagster_project.jobs import ALL_ASSETS, LAYER_ASSETS, layer_job, summary_job
from dagster_project.resources import build_resources
from dagster_project.sensors import layer_sensor, registry_sensor, summary_requests
from dd_assets import storage
from dd_assets.partitions import layer_key
from dd_assets.resources import RegistryResource
from dd_assets.tables import LOGIT_EFFECTS
from tests.helpers import native_entry, write_registry


def test_definitions_load():
    from dagster_project.definitions import defs

    assert defs.resolve_job_def("model_assets") is not None
    assert defs.resolve_job_def("layer_assets") is not None
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "dataset_tokens", "neuron_example_choices", "neuron_stats", "neuron_examples",
        "model_metadata", "logit_effects", "model_tokenizer", "n2g_graphs", "n2g_token_index",
        "neuron_similarity", "explanations", "activation_sample", "activation_sample_windows",
        "neuron_coactivation", "token_index", "n2g_fidelity", "explanation_embeddings",
        "token_description_vectors",
        "window_embeddings", "embedding_scores",
    }  # fmt: skip
    assert defs.resolve_job_def("summary_assets") is not None


def test_summary_sensor_waits_for_every_layer_and_runs_once(tiny):
    registry = RegistryResource(path=str(tiny.registry))
    # The session run built the summaries after the last layer: nothing to do.
    assert summary_requests(tiny.instance, registry).run_requests == []
    # A fresh instance knows no layers yet: nothing to summarise.
    assert summary_requests(dg.DagsterInstance.ephemeral(), registry).run_requests == []


def _tick(sensor, instance, registry_path):
    ctx = dg.build_sensor_context(
        instance=instance, resources={"registry": RegistryResource(path=str(registry_path))}
    )
    return sensor(ctx)


def _apply(instance, result: dg.SensorResult) -> None:
    for req in result.dynamic_partitions_requests or []:
        if isinstance(req, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        else:
            for key in req.partition_keys:
                instance.delete_dynamic_partition(req.partitions_def_name, key)


def test_registry_sensor_adds_runs_and_drops_models(tmp_path, tokenizer_dir):
    instance = dg.DagsterInstance.ephemeral()
    path = write_registry(
        tmp_path / "models.yaml",
        [native_entry("a", tokenizer_dir), native_entry("b", tokenizer_dir)],
    )
    first = _tick(registry_sensor, instance, path)
    assert [r.partition_key for r in first.run_requests] == ["a", "b"]
    _apply(instance, first)
    assert _tick(registry_sensor, instance, path).run_requests == []  # nothing new

    write_registry(path, [native_entry("b", tokenizer_dir), native_entry("c", tokenizer_dir)])
    second = _tick(registry_sensor, instance, path)
    assert [r.partition_key for r in second.run_requests] == ["c"]  # only the new model
    _apply(instance, second)
    assert sorted(instance.get_dynamic_partitions("model")) == ["b", "c"]


def test_layer_sensor_waits_for_layer_count(tmp_path, tokenizer_dir):
    instance = dg.DagsterInstance.ephemeral()
    path = write_registry(tmp_path / "models.yaml", [native_entry("a", tokenizer_dir)])
    assert _tick(layer_sensor, instance, path).run_requests == []  # metadata not there yet
    instance.report_runless_asset_event(
        dg.AssetMaterialization("model_metadata", partition="a", metadata={"num_layers": 3})
    )
    result = _tick(layer_sensor, instance, path)
    assert [str(r.partition_key) for r in result.run_requests] == ["0|a", "1|a", "2|a"]
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["0", "1", "2"]
    assert set(result.run_requests[0].asset_selection) == {a.key for a in LAYER_ASSETS}
    # Layer 0 gets every per-layer asset but one (as when an asset is added to a deployment):
    # the next tick requests only that asset, under a new run key.
    *others, added = LAYER_ASSETS
    for asset in others:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset.key, partition=str(layer_key("a", 0)))
        )
    again = {str(r.partition_key): r for r in _tick(layer_sensor, instance, path).run_requests}
    assert again["0|a"].asset_selection == [added.key]
    assert again["0|a"].run_key != result.run_requests[0].run_key
    assert set(again["1|a"].asset_selection) == {a.key for a in LAYER_ASSETS}


def test_layer_key_beyond_a_models_depth_materializes_nothing(tiny):
    # 'tiny' has 2 layers; a deeper model would put layer key "2" into the cross product.
    instance = tiny.instance
    if "2" not in instance.get_dynamic_partitions("layer"):
        instance.add_dynamic_partitions("layer", ["2"])
    result = dg.materialize(
        ALL_ASSETS,
        selection=LAYER_ASSETS,
        partition_key=layer_key("tiny", 2),
        instance=instance,
        resources=build_resources(tiny.root, str(tiny.registry)),
    )
    assert result.success
    assert result.get_asset_materialization_events() == []
    assert "2|tiny" not in {
        str(k) for k in instance.get_materialized_partitions(dg.AssetKey("logit_effects"))
    }
    assert set(storage.read(tiny.root, LOGIT_EFFECTS, "tiny")["layer"].unique()) == {0, 1}


def _job(name: str) -> dg.JobDefinition:
    from dagster_project.definitions import defs

    return defs.resolve_job_def(name)


def _start_layer_run(instance, key: str, assets) -> dg.DagsterRun:
    """A layer run as the daemon would have launched it, left in flight (STARTED)."""
    run = instance.create_run_for_job(
        job_def=_job(layer_job.name),
        tags={"dagster/partition": key},
        asset_selection=frozenset(a.key for a in assets),
    )
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=layer_job.name
        ),
    )
    return instance.get_run_by_id(run.run_id)


def test_layer_sensor_requests_nothing_a_run_in_flight_will_materialize(tmp_path, tokenizer_dir):
    # The issue's trace: layer 1's run had written logit_effects and n2g_graphs, and while it was
    # still computing explanations the sensor requested explanations again.
    instance = dg.DagsterInstance.ephemeral()
    path = write_registry(tmp_path / "models.yaml", [native_entry("a", tokenizer_dir)])
    instance.report_runless_asset_event(
        dg.AssetMaterialization("model_metadata", partition="a", metadata={"num_layers": 2})
    )
    first = _tick(layer_sensor, instance, path)
    _apply(instance, first)
    assert sorted(str(r.partition_key) for r in first.run_requests) == ["0|a", "1|a"]

    run = _start_layer_run(instance, "1|a", LAYER_ASSETS)
    assert run.status == dg.DagsterRunStatus.STARTED
    ticks = [_tick(layer_sensor, instance, path)]  # tick 1: the run is in flight
    *early, last = LAYER_ASSETS
    for asset in early:  # its first assets land, the last is still being computed
        instance.report_runless_asset_event(dg.AssetMaterialization(asset.key, partition="1|a"))
    ticks.append(_tick(layer_sensor, instance, path))  # tick 2: the duplicate
    for tick in ticks:
        assert [str(r.partition_key) for r in tick.run_requests] == ["0|a"]

    # The run fails before its last asset: the next tick asks for that asset alone.
    instance.report_run_failed(run)
    after = {str(r.partition_key): r for r in _tick(layer_sensor, instance, path).run_requests}
    assert after["1|a"].asset_selection == [last.key]


def test_summary_sensor_waits_for_a_summary_run_in_flight(tmp_path, tokenizer_dir):
    instance = dg.DagsterInstance.ephemeral()
    path = write_registry(tmp_path / "models.yaml", [native_entry("a", tokenizer_dir)])
    instance.report_runless_asset_event(
        dg.AssetMaterialization("model_metadata", partition="a", metadata={"num_layers": 1})
    )
    instance.report_runless_asset_event(dg.AssetMaterialization("n2g_graphs", partition="0|a"))
    registry = RegistryResource(path=str(path))
    (request,) = summary_requests(instance, registry).run_requests
    run = instance.create_run_for_job(
        job_def=_job(summary_job.name),
        tags={"dagster/partition": "a"},
    )
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=summary_job.name
        ),
    )
    assert summary_requests(instance, registry).run_requests == []
    instance.report_run_failed(instance.get_run_by_id(run.run_id))
    assert [r.partition_key for r in summary_requests(instance, registry).run_requests] == ["a"]
    assert request.partition_key == "a"
