"""The one IO layer between Dagster assets and Delta tables.

An asset returns a polars frame; `DeltaIOManager` finds its table in `dd_assets.tables` by asset
name and replaces exactly the partition being materialized (all layers of a model for model-level
assets, one layer for per-layer ones). Inputs are read back filtered to the partitions the
downstream run maps to, whether that is one model, one layer, or every layer of a model.
"""

import dagster as dg
import polars as pl

from dd_assets import storage
from dd_assets.partitions import split_key
from dd_assets.tables import TABLES


def _partition_scope(keys) -> tuple[str, list[int] | None]:
    parsed = [split_key(k) for k in keys]
    models = {m for m, _ in parsed}
    if len(models) != 1:
        raise ValueError(f"expected partitions of exactly one model, got {sorted(models)}")
    layers = sorted({layer for _, layer in parsed if layer is not None})
    return models.pop(), (layers or None)


class DeltaIOManager(dg.ConfigurableIOManager):
    """Writes each asset's frame into its Delta table with a partition-predicate overwrite.

    A model-level asset that writes a per-layer table replaces all of that model's layers at once.
    """

    root: str

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        table = TABLES[context.asset_key.path[-1]]
        model, layers = _partition_scope([context.asset_partition_key])
        if not table.per_layer and layers is not None:
            raise ValueError(f"table {table.name} is model-level but got layer partitions")
        version = storage.write_partition(self.root, table, obj, model, layers)
        context.add_output_metadata(
            {
                "rows": obj.height,
                "table": storage.table_uri(self.root, table),
                "delta_version": version,
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        table = TABLES[context.asset_key.path[-1]]
        model, layers = _partition_scope(context.asset_partition_keys)
        return storage.read(self.root, table, model, layers if table.per_layer else None)
