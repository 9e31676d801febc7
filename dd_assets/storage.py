"""Delta Lake storage: the only module that talks to deltalake.

Writes replace one partition (a model, or some layers of a model) atomically with
``mode="overwrite"`` and a predicate on the partition columns. That makes every write idempotent,
and a write that fails or is killed leaves the table at its previous version, so readers keep
seeing the old rows. Concurrent writers of different partitions can still race on the commit;
those conflicts are retried.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError

from dd_assets.tables import TableSpec

log = logging.getLogger(__name__)

WRITER_PROPERTIES = WriterProperties(compression="ZSTD", max_row_group_size=8192)
COMMIT_RETRIES = 8


def table_uri(root: str, table: TableSpec) -> str:
    return f"{root.rstrip('/')}/{table.name}"


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def partition_predicate(model: str, layers: list[int] | None = None) -> str:
    """SQL predicate selecting one model (and optionally some of its layers)."""
    # Model names are validated against `registry.NAME_PATTERN`, which admits no quote; check anyway
    # because this string goes into SQL.
    if "'" in model:
        raise ValueError(f"model name {model!r} cannot contain a quote")
    predicate = f"model = '{model}'"
    if layers is not None:
        predicate += f" AND layer IN ({', '.join(str(int(layer)) for layer in layers)})"
    return predicate


def write_partition(
    root: str, table: TableSpec, df: pl.DataFrame, model: str, layers: list[int] | None = None
) -> int:
    """Replace the rows of `model` (restricted to `layers` if given) with `df`; return the version.

    `df` must hold only rows of that model and those layers: delta-rs rejects the write otherwise.
    """
    df = table.conform(df)
    if df.height and (df["model"] != model).any():
        raise ValueError(f"table {table.name}: frame has rows of models other than {model!r}")
    if layers is not None and df.height and not df["layer"].is_in(layers).all():
        raise ValueError(f"table {table.name}: frame has rows outside layers {layers}")
    uri = table_uri(root, table)
    if _is_local(uri):
        Path(uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    arrow = df.to_arrow()
    predicate = partition_predicate(model, layers)
    for attempt in range(COMMIT_RETRIES):
        try:
            write_deltalake(
                uri,
                arrow,
                mode="overwrite",
                predicate=predicate if DeltaTable.is_deltatable(uri) else None,
                partition_by=list(table.partition_by),
                writer_properties=WRITER_PROPERTIES,
            )
            return DeltaTable(uri).version()
        except CommitFailedError as exc:
            # Another writer committed first (or created the table); try again on top of it.
            wait = min(2.0, 0.05 * 2**attempt) * (1 + random.random())
            log.warning("commit conflict on %s (%s); retrying in %.2fs", table.name, exc, wait)
            time.sleep(wait)
    raise RuntimeError(f"table {table.name}: gave up after {COMMIT_RETRIES} commit conflicts")


def read(
    root: str,
    table: TableSpec,
    model: str,
    layers: list[int] | None = None,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """Rows of one model (and optionally some layers, some columns); empty if nothing was written."""
    uri = table_uri(root, table)
    if not DeltaTable.is_deltatable(uri):
        empty = pl.DataFrame(schema=table.schema)
        return empty.select(columns) if columns else empty
    lf = _filter(pl.scan_delta(uri), model, layers)
    return (lf.select(columns) if columns else lf).collect()


def _filter(lf: pl.LazyFrame, model: str, layers: list[int] | None) -> pl.LazyFrame:
    lf = lf.filter(pl.col("model") == model)
    if layers is not None:
        lf = lf.filter(pl.col("layer").is_in(layers))
    return lf


@dataclass
class TableReader:
    """A long-lived reader for the API: one pinned table version, refreshed on demand.

    Every read goes through the version pinned by the last `refresh`, so a response never mixes
    rows of two versions even while a pipeline run rewrites the table.
    """

    root: str
    table: TableSpec
    _dt: DeltaTable | None = field(default=None, init=False, repr=False)

    def refresh(self) -> int | None:
        """Load the newest version; return it, or None while the table does not exist."""
        uri = table_uri(self.root, self.table)
        if self._dt is None:
            if not DeltaTable.is_deltatable(uri):
                return None
            self._dt = DeltaTable(uri)
        else:
            self._dt.update_incremental()
        return self._dt.version()

    @property
    def version(self) -> int | None:
        return None if self._dt is None else self._dt.version()

    def scan(self, model: str, layers: list[int] | None = None) -> pl.LazyFrame:
        """A lazy frame over the pinned version, filtered to the model (and layers)."""
        if self._dt is None:
            return pl.DataFrame(schema=self.table.schema).lazy()
        return _filter(pl.scan_delta(self._dt), model, layers)

    def read(self, model: str, layers: list[int] | None = None) -> pl.DataFrame:
        return self.scan(model, layers).collect()

    def files(self) -> list[str]:
        """URIs of the pinned version's data files (``.../model=m/layer=3/part-....parquet``)."""
        return [] if self._dt is None else list(self._dt.file_uris())

    def read_partition_values(self) -> list[dict[str, str]] | None:
        """Partition values present in the pinned version, from the Delta log alone."""
        if self._dt is None:
            return None
        return [dict(p) for p in self._dt.partitions()]
