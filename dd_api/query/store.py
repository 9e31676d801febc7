"""The data store: table-version pinning and a byte-budgeted cache of partitions, nothing else.

A neuron's rows are found by loading its (table, model, layer) partition once into numpy columns
sorted by neuron and slicing them (~0.1 ms per lookup instead of ~70 ms for a Delta scan,
platform notes). Each table is pinned at one version per refresh (at most every
``refresh_seconds``), so a response never mixes two versions of a table.

Cached values are keyed by a fingerprint of the files that hold their partition, not by the
table version: a commit that rewrites another model or another layer (every commit bumps the
table's version) leaves the cached partitions it did not touch valid, so only what changed is
reloaded. Partitions are kept up to a byte budget, least recently used out first.

Cold loads never run on the event loop: inside ``warm_only()`` (what the web layer wraps its
in-loop attempt in) a value that is not cached, or a refresh that is due, raises ``Cold`` and the
caller reruns the query in a worker thread. Concurrent cold loads of one partition or value are
coalesced: the first loads it, the others wait for its result.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import numpy as np
import polars as pl

from dd_api.settings import ApiSettings
from dd_assets import storage
from dd_assets.registry import Registry, load_registry
from dd_assets.tables import TABLES, TableSpec

LONG_STRING = 256
MAX_DERIVED = 512
T = TypeVar("T")


class Cold(Exception):
    """Raised in ``warm_only`` mode where a value would have to be loaded or refreshed."""


def _column(series: pl.Series):
    """A column in the cheapest form to slice per request.

    Numbers become numpy arrays, fixed-width numeric lists 2-D numpy arrays, anything else a numpy
    array of Python values. Slicing these costs microseconds; polars' per-call overhead is
    ~0.4 ms, which dominated lookups.
    """
    dtype = series.dtype
    if dtype.is_numeric():
        return series.to_numpy()
    if isinstance(dtype, pl.List) and dtype.inner.is_numeric() and series.len() > 0:
        widths = series.list.len()
        if widths.min() == widths.max() and widths.null_count() == 0:
            return series.list.to_array(int(widths[0])).to_numpy()
    if dtype == pl.String and (series.str.len_chars().max() or 0) <= LONG_STRING:
        # Fixed-width unicode, not object: millions of small str objects would be traversed by
        # every full garbage collection and show up as latency spikes. Long strings (N2G's
        # JSON, DOT and SVG) stay objects: a fixed width would pad every row to the longest.
        return np.asarray(series.fill_null("").to_list(), dtype=str)
    values = np.empty(series.len(), dtype=object)
    values[:] = series.to_list()
    return values


def _nbytes(column) -> int:
    if column.dtype != object:
        return int(column.nbytes)
    return int(column.nbytes) + sum(len(v) if isinstance(v, str) else 64 for v in column)


@dataclass
class Partition:
    """One (table, model[, layer]) partition, sorted by the table's sort keys, ready for lookups."""

    frame: pl.DataFrame
    columns: dict[str, Any]
    offsets: np.ndarray | None  # rows of neuron n are offsets[n]:offsets[n + 1]
    nbytes: int

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Partition:
        columns = {name: _column(frame.get_column(name)) for name in frame.columns}
        offsets = None
        if "neuron" in columns:
            neurons = columns["neuron"]
            top = int(neurons.max()) + 1 if len(neurons) else 0
            offsets = np.searchsorted(neurons, np.arange(top + 1, dtype=neurons.dtype))
        size = int(frame.estimated_size()) + sum(_nbytes(c) for c in columns.values())
        return cls(frame, columns, offsets, size)

    def neuron_rows(self, neuron: int) -> dict[str, Any]:
        """Every column sliced to one neuron's rows (the table is sorted by neuron)."""
        if self.offsets is None or neuron + 1 >= len(self.offsets):
            lo = hi = 0
        else:
            lo, hi = self.offsets[neuron], self.offsets[neuron + 1]
        return {name: col[lo:hi] for name, col in self.columns.items()}


def _fingerprints(files: list[str]) -> dict[tuple[str, int | None], int]:
    """(model, layer) and (model, None) -> a hash of the data files that hold them."""
    groups: dict[tuple[str, int | None], list[str]] = {}
    for path in files:
        parts = dict(
            unquote(seg).split("=", 1)
            for seg in path.split("/")[:-1]
            if seg.startswith(("model=", "layer="))
        )  # hive-style partition folders: .../model=<name>/layer=<i>/part-....parquet
        model = parts.get("model")
        if model is None:
            continue
        groups.setdefault((model, None), []).append(path)
        if "layer" in parts:
            groups.setdefault((model, int(parts["layer"])), []).append(path)
    return {key: hash(tuple(sorted(paths))) for key, paths in groups.items()}


@dataclass
class _Table:
    """One table's reader, its pinned version and the file fingerprints of that version."""

    reader: storage.TableReader
    lock: threading.Lock = field(default_factory=threading.Lock)
    refreshed: float = -float("inf")
    fingerprints: dict[tuple[str, int | None], int] = field(default_factory=dict)
    layers: dict[str, frozenset[int]] = field(default_factory=dict)  # model -> layers with files


class DataStore:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._tables = {
            name: _Table(storage.TableReader(settings.data_root, t)) for name, t in TABLES.items()
        }
        self._partitions: OrderedDict[tuple, Partition] = OrderedDict()
        self._cached_bytes = 0
        self._derived: OrderedDict[tuple, Any] = OrderedDict()
        self._recent: dict[tuple, tuple[float, Any]] = {}  # derived values checked lately
        self._loading: dict[tuple, Future] = {}
        self._lock = threading.Lock()  # guards the dicts above, never held during I/O
        self._local = threading.local()
        self._registry: Registry | None = None
        self._registry_mtime: float | None = None
        self._registry_checked = -float("inf")

    # -- warm-only mode -------------------------------------------------------------------------

    @contextmanager
    def warm_only(self) -> Iterator[None]:
        """Within this block, anything that would load or refresh raises ``Cold`` instead."""
        self._local.warm_only = True
        try:
            yield
        finally:
            self._local.warm_only = False

    def _cold(self) -> None:
        if getattr(self._local, "warm_only", False):
            raise Cold

    # -- registry -------------------------------------------------------------------------------

    def registry(self) -> Registry:
        """The registry, re-read when the file changes; the last good one if it becomes invalid."""
        now = time.monotonic()
        if (
            self._registry is not None
            and now - self._registry_checked < self.settings.refresh_seconds
        ):
            return self._registry
        self._cold()
        self._registry_checked = now
        path = Path(self.settings.registry)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return self._registry or Registry(())
        if mtime != self._registry_mtime:
            try:
                self._registry = load_registry(path)
            except (ValueError, TypeError, OSError):
                if self._registry is None:
                    raise
            self._registry_mtime = mtime
        return self._registry or Registry(())

    # -- versions -------------------------------------------------------------------------------

    def _refreshed(self, table: TableSpec) -> _Table:
        """The table's state, refreshed to the newest version if `refresh_seconds` have passed."""
        state = self._tables[table.name]
        if time.monotonic() - state.refreshed < self.settings.refresh_seconds:
            return state
        self._cold()
        with state.lock:
            if time.monotonic() - state.refreshed >= self.settings.refresh_seconds:
                before = state.reader.version
                version = state.reader.refresh()
                if version != before or not state.fingerprints:
                    files = state.reader.files() if version is not None else []
                    state.fingerprints = _fingerprints(files)
                    layers: dict[str, set[int]] = {}
                    for model, layer in state.fingerprints:
                        if layer is not None:
                            layers.setdefault(model, set()).add(layer)
                    state.layers = {m: frozenset(ls) for m, ls in layers.items()}
                state.refreshed = time.monotonic()
        return state

    def version(self, table: TableSpec) -> int | None:
        """The pinned version of a table (None while it does not exist)."""
        return self._refreshed(table).reader.version

    def fingerprint(self, table: TableSpec, model: str, layer: int | None = None) -> int | None:
        """Identifies the files holding a model (or one layer of it) in the pinned version;
        None when there are none. Unchanged by commits that touch other partitions."""
        return self._refreshed(table).fingerprints.get((model, layer))

    def layers_present(self, table: TableSpec, model: str) -> frozenset[int]:
        """Layers of `model` that have rows in a per-layer table (from the Delta log, no scan)."""
        return self._refreshed(table).layers.get(model, frozenset())

    def has_model(self, table: TableSpec, model: str) -> bool:
        return self.fingerprint(table, model) is not None

    # -- caching with coalesced loads -----------------------------------------------------------

    def _load(self, key: tuple, build: Callable[[], T], cache: OrderedDict) -> T:
        """The cached value of `key`, or build it once however many threads ask at the same time."""
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
            self._cold()
            pending = self._loading.get(key)
            mine = pending is None
            if mine:
                pending = self._loading[key] = Future()
        if not mine:
            return pending.result()
        try:
            value = build()
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            self._store(key, value, cache)
        pending.set_result(value)
        return value

    def _store(self, key: tuple, value: Any, cache: OrderedDict) -> None:
        cache[key] = value
        if cache is self._derived:
            while len(cache) > MAX_DERIVED:
                cache.popitem(last=False)
            return
        self._cached_bytes += value.nbytes
        while self._cached_bytes > self.settings.cache_bytes and len(cache) > 1:
            _, old = cache.popitem(last=False)
            self._cached_bytes -= old.nbytes

    # -- frames ---------------------------------------------------------------------------------

    def partition(self, table: TableSpec, model: str, layer: int | None = None) -> Partition:
        """Rows of one model (and layer, for per-layer tables), sorted as the table declares."""
        fingerprint = self.fingerprint(table, model, layer)
        key = (table.name, model, layer, fingerprint)

        def build() -> Partition:
            if fingerprint is None:
                return Partition.from_frame(pl.DataFrame(schema=table.schema))
            state = self._tables[table.name]
            with state.lock:
                layers = [layer] if layer is not None else None
                frame = state.reader.read(model, layers)
            return Partition.from_frame(frame.sort(list(table.sort_by)))

        return self._load(key, build, self._partitions)

    def frame(self, table: TableSpec, model: str, layer: int | None = None) -> pl.DataFrame:
        return self.partition(table, model, layer).frame

    def neuron_rows(self, table: TableSpec, model: str, layer: int, neuron: int) -> dict:
        return self.partition(table, model, layer).neuron_rows(neuron)

    def scan(
        self, table: TableSpec, model: str, query: Callable[[pl.LazyFrame], pl.LazyFrame]
    ) -> pl.DataFrame:
        """`query` over a model's rows of the pinned version, collected (for derived values)."""
        state = self._refreshed(table)
        with state.lock:
            return query(state.reader.scan(model)).collect()

    def derived(
        self, name: str, tables: tuple[TableSpec, ...], model: str, build: Callable[[], T]
    ) -> T:
        """A value computed from some tables, cached until the model's files in one change.

        Checking the files of many tables (metadata depends on all of them) costs more than most
        lookups, so a value is re-checked at most every `refresh_seconds`, as versions are.
        """
        now = time.monotonic()
        recent = self._recent.get((name, model))
        if recent is not None and now - recent[0] < self.settings.refresh_seconds:
            return recent[1]
        key = (name, model, *(self.fingerprint(t, model) for t in tables))
        value = self._load(key, build, self._derived)
        if len(self._recent) > MAX_DERIVED:
            self._recent.clear()
        self._recent[name, model] = (now, value)
        return value

    def cached_bytes(self) -> int:
        return self._cached_bytes
