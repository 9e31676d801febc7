"""Delta Lake storage: the only module that talks to deltalake.

Writes replace one partition (a model, or some layers of a model) atomically with
``mode="overwrite"`` and a predicate on the partition columns. That makes every write idempotent,
and a write that fails or is killed leaves the table at its previous version, so readers keep
seeing the old rows. Concurrent writers of different partitions can still race on the commit;
those conflicts are retried.

On S3 a commit is only safe against concurrent writers when the store can refuse to overwrite an
existing log entry: `storage_options` asks delta-rs for conditional puts (``etag``), which
SeaweedFS, MinIO, R2 and AWS S3 support, unless a DynamoDB locking provider is configured.
"""

from __future__ import annotations

import json
import logging
import os
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


def storage_options(uri: str) -> dict[str, str] | None:
    """Object-store options for `uri`: ``DEEPDECIPHER_STORAGE_OPTIONS`` (a JSON object) over defaults.

    Credentials and endpoints come from the usual ``AWS_*`` variables, which delta-rs reads itself.
    """
    if _is_local(uri):
        return None
    options: dict[str, str] = {}
    if uri.startswith(("s3://", "s3a://")) and not os.environ.get("AWS_S3_LOCKING_PROVIDER"):
        options["conditional_put"] = "etag"  # a commit never silently replaces another
    raw = os.environ.get("DEEPDECIPHER_STORAGE_OPTIONS", "").strip()
    if raw:
        extra = json.loads(raw)
        if not isinstance(extra, dict):
            raise ValueError("DEEPDECIPHER_STORAGE_OPTIONS must be a JSON object")
        options.update({str(k): str(v) for k, v in extra.items()})
    return options


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
    options = storage_options(uri)
    for attempt in range(COMMIT_RETRIES):
        # The first writer creates the table by appending: a writer that found no table may
        # find one by the time it commits (another partition's writer made it), and an overwrite
        # without predicate would then delete that writer's rows.
        exists = DeltaTable.is_deltatable(uri, options)
        try:
            write_deltalake(
                uri,
                arrow,
                mode="overwrite" if exists else "append",
                predicate=predicate if exists else None,
                partition_by=list(table.partition_by),
                writer_properties=WRITER_PROPERTIES,
                storage_options=options,
            )
            return DeltaTable(uri, storage_options=options).version()
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
    options = storage_options(uri)
    if not DeltaTable.is_deltatable(uri, options):
        empty = pl.DataFrame(schema=table.schema)
        return empty.select(columns) if columns else empty
    lf = _filter(pl.scan_delta(DeltaTable(uri, storage_options=options)), model, layers)
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
            options = storage_options(uri)
            if not DeltaTable.is_deltatable(uri, options):
                return None
            self._dt = DeltaTable(uri, storage_options=options)
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
