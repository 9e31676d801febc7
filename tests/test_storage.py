"""Delta storage: partition-scoped overwrites, URI roots, schema enforcement."""

from __future__ import annotations

import polars as pl
import pytest

from dd_assets import storage
from dd_assets.tables import NEURON_STATS


def stats(model: str, layer: int, n: int, value: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": [model] * n, "layer": [layer] * n, "neuron": list(range(n)),
            "count": [10] * n, "max": [value] * n, "min": [0.0] * n, "mean": [0.5] * n,
            "std": [0.1] * n, "frac_positive": [0.5] * n, "hist_edges": [[0.0, value]] * n,
            "hist_counts": [[10]] * n,
        },
        schema=NEURON_STATS.schema,
    )  # fmt: skip


@pytest.mark.parametrize("uri", [False, True], ids=["path", "file-uri"])
def test_overwrites_touch_only_their_partition(tmp_path, uri):
    root = f"file://{tmp_path}" if uri else str(tmp_path)
    storage.write_partition(root, NEURON_STATS, stats("a", 0, 4), "a", [0])
    storage.write_partition(root, NEURON_STATS, stats("a", 1, 4), "a", [1])
    storage.write_partition(root, NEURON_STATS, stats("b", 0, 2), "b", [0])
    v = storage.write_partition(root, NEURON_STATS, stats("a", 1, 3, 2.0), "a", [1])
    a = storage.read(root, NEURON_STATS, "a")
    assert a.group_by("layer").len().sort("layer")["len"].to_list() == [4, 3]
    assert a.filter(pl.col("layer") == 1)["max"].to_list() == [2.0] * 3
    assert storage.read(root, NEURON_STATS, "b").height == 2
    assert storage.TableReader(root, NEURON_STATS).refresh() == v == 3


def test_rejected_writes_leave_the_table_alone(tmp_path):
    root = str(tmp_path)
    v = storage.write_partition(root, NEURON_STATS, stats("a", 0, 4), "a", [0])
    with pytest.raises(ValueError, match="outside layers"):
        storage.write_partition(root, NEURON_STATS, stats("a", 1, 4), "a", [0])
    with pytest.raises(ValueError, match="other than"):
        storage.write_partition(root, NEURON_STATS, stats("b", 0, 4), "a", [0])
    wrong_dtype = stats("a", 0, 4).with_columns(pl.col("neuron").cast(pl.Int64))
    with pytest.raises(ValueError, match="dtype mismatch"):
        storage.write_partition(root, NEURON_STATS, wrong_dtype, "a", [0])
    with pytest.raises(ValueError, match="missing columns"):
        storage.write_partition(root, NEURON_STATS, stats("a", 0, 4).drop("std"), "a", [0])
    with pytest.raises(ValueError, match="quote"):
        storage.partition_predicate("a' OR '1'='1")
    assert storage.TableReader(root, NEURON_STATS).refresh() == v
    assert storage.read(root, NEURON_STATS, "a").height == 4


def test_reading_a_missing_table_is_empty(tmp_path):
    assert storage.read(str(tmp_path), NEURON_STATS, "a").height == 0
    assert storage.TableReader(str(tmp_path), NEURON_STATS).refresh() is None
