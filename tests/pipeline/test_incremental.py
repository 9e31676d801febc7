"""Adding a model materializes only its partitions; removing one stops serving it, data intact;
concurrent writers of different partitions of one table both land."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from litestar.testing import TestClient

from dagster_project.jobs import ALL_ASSETS
from dagster_project.runner import materialize_models
from dd_api.app import create_app
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.tables import NEURON_EXAMPLES, NEURON_STATS
from tests.helpers import native_entry, write_registry

REPO = Path(__file__).resolve().parents[2]


def materializations(instance: dg.DagsterInstance, after: int | None = None):
    """Every asset materialization event in the instance's event log (after a storage id)."""
    records = []
    for asset in ALL_ASSETS:
        for key in asset.keys:
            flt = dg.AssetRecordsFilter(asset_key=key, after_storage_id=after)
            records += instance.fetch_materializations(flt, limit=10_000).records
    return records


def test_adding_a_model_backfills_only_its_partitions(tiny, tokenizer_dir, tmp_path, monkeypatch):
    root = str(tmp_path / "data")
    shutil.copytree(tiny.root, root)
    instance = tiny.instance  # knows every 'tiny' partition is materialized
    registry = write_registry(
        tmp_path / "models.yaml",
        [native_entry("tiny", tokenizer_dir), native_entry("tiny3", tokenizer_dir, n_layers=3)],
    )
    cursor = max(r.storage_id for r in materializations(instance))
    before = storage.read(root, NEURON_EXAMPLES, "tiny")

    report = materialize_models(instance, str(registry), root)

    assert report.model_runs == ["tiny3"] and report.skipped == ["tiny"]
    partitions = [r.partition_key for r in materializations(instance, after=cursor)]
    assert partitions and all(p == "tiny3" or p.endswith("|tiny3") for p in partitions)
    assert storage.read(root, NEURON_EXAMPLES, "tiny").equals(before)  # untouched

    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(registry))
    with TestClient(create_app(ApiSettings(data_root=root, refresh_seconds=0))) as client:
        names = [m["name"] for m in client.get("/api").json()["models"]]
        assert names == ["tiny", "tiny3"]
        assert client.get("/api/tiny3/neuroscope/2/7").status_code == 200
        assert client.get("/api/tiny/neuroscope/2/7").status_code == 404  # tiny has 2 layers

        # Removing a model from the registry stops serving it and leaves its data alone.
        write_registry(registry, [native_entry("tiny3", tokenizer_dir, n_layers=3)])
        assert [m["name"] for m in client.get("/api").json()["models"]] == ["tiny3"]
        assert client.get("/api/tiny/neuroscope/0/0").status_code == 404
    assert storage.read(root, NEURON_STATS, "tiny").height == 2 * 96


WRITER = """
import sys
from dd_assets import storage
from dd_assets.tables import NEURON_STATS
root, layer = sys.argv[1], int(sys.argv[2])
rows = storage.read(root, NEURON_STATS, "tiny", [layer])
for _ in range(8):
    storage.write_partition(root, NEURON_STATS, rows, "tiny", [layer])
print("ok")
"""


def test_concurrent_writers_of_different_partitions_both_land(tiny, tmp_path):
    root = str(tmp_path / "data")
    shutil.copytree(tiny.root, root)
    before = storage.read(root, NEURON_STATS, "tiny").sort("layer", "neuron")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, root, str(layer)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for layer in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    after = storage.read(root, NEURON_STATS, "tiny").sort("layer", "neuron")
    assert after.equals(before)  # 16 overwrites later: same rows, no duplicates, none lost
