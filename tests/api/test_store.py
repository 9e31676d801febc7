"""The data store: cold loads coalesce and never happen in warm-only mode (the event loop), only
rewritten partitions reload, and the cache keeps to its byte budget. Real Delta tables of the
tiny model throughout."""

from __future__ import annotations

import threading
import time

import pytest

from dd_api.query.store import Cold, DataStore
from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.tables import LOGIT_EFFECTS, N2G_GRAPHS, NEURON_EXAMPLES, NEURON_STATS


@pytest.fixture
def store(tiny, data_copy) -> DataStore:
    return DataStore(
        ApiSettings(data_root=data_copy, registry=str(tiny.registry), refresh_seconds=0)
    )


def test_warm_only_mode_never_loads(store):
    with store.warm_only(), pytest.raises(Cold):
        store.partition(NEURON_STATS, "tiny", 0)
    loaded = store.partition(NEURON_STATS, "tiny", 0)
    store.settings = store.settings.model_copy(update={"refresh_seconds": 60.0})
    with store.warm_only():
        assert store.partition(NEURON_STATS, "tiny", 0) is loaded


def test_concurrent_cold_loads_of_one_partition_coalesce(store, monkeypatch):
    reader = store._tables[NEURON_EXAMPLES.name].reader
    original, calls = reader.read, []

    def slow_read(model, layers=None):
        calls.append(layers)
        time.sleep(0.3)  # long enough for every thread to ask while the first one reads
        return original(model, layers)

    monkeypatch.setattr(reader, "read", slow_read)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(store.partition(NEURON_EXAMPLES, "tiny", 1)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [[1]] and len(results) == 8
    assert all(r is results[0] for r in results)


def test_only_rewritten_partitions_reload(store, data_copy):
    layer0 = store.partition(LOGIT_EFFECTS, "tiny", 0)
    layer1 = store.partition(LOGIT_EFFECTS, "tiny", 1)
    stats0 = store.partition(NEURON_STATS, "tiny", 0)
    before = store.version(LOGIT_EFFECTS)
    rows = storage.read(data_copy, LOGIT_EFFECTS, "tiny", [1])
    storage.write_partition(data_copy, LOGIT_EFFECTS, rows.head(10), "tiny", [1])
    assert store.version(LOGIT_EFFECTS) > before  # the table moved on...
    assert store.partition(LOGIT_EFFECTS, "tiny", 0) is layer0  # ...layer 0 did not
    fresh = store.partition(LOGIT_EFFECTS, "tiny", 1)
    assert fresh is not layer1 and fresh.frame.height == 10
    assert store.partition(NEURON_STATS, "tiny", 0) is stats0


def test_cache_keeps_to_its_byte_budget(tiny, data_copy):
    settings = ApiSettings(data_root=data_copy, registry=str(tiny.registry), cache_mb=1)
    store = DataStore(settings)
    sizes = []
    for table in (NEURON_EXAMPLES, NEURON_STATS, LOGIT_EFFECTS, N2G_GRAPHS):
        for layer in (0, 1):
            sizes.append(store.partition(table, "tiny", layer).nbytes)
            assert store.cached_bytes() <= max(settings.cache_bytes, sizes[-1])
    assert sum(sizes) > settings.cache_bytes  # the budget did evict something
