"""DeepDecipher's model metadata: the one source of a model's shape and of its services."""

from __future__ import annotations

from dd_api.query.catalog import SEARCH_TABLES, SERVICE_TABLES
from dd_api.query.errors import NotFound
from dd_api.query.schemas import Metadata
from dd_api.query.store import DataStore
from dd_assets.tables import MODEL_METADATA, TABLES, TableSpec

ALL_TABLES = tuple(TABLES.values())
"""Metadata lists the available services, so it depends on every table."""


def missing_tables(
    store: DataStore, tables: tuple[TableSpec, ...], model: str, layer: int | None = None
) -> list[str]:
    """Names of the tables with no data for this model (or, for per-layer tables, this layer)."""
    missing = []
    for t in tables:
        if t.per_layer and layer is not None:
            present = layer in store.layers_present(t, model)
        else:
            present = store.has_model(t, model)
        if not present:
            missing.append(t.name)
    return missing


def available_services(store: DataStore, model: str) -> list[str]:
    """Services, then search routes, whose tables all hold data for the model."""
    groups = {**SERVICE_TABLES, **SEARCH_TABLES}
    return [name for name, tables in groups.items() if not missing_tables(store, tables, model)]


def metadata(store: DataStore, model: str) -> Metadata:
    """The model's metadata, cached until one of its tables changes; 404 if not materialized."""

    def build() -> Metadata:
        df = store.frame(MODEL_METADATA, model)
        if df.height == 0:
            raise NotFound(f"model {model!r} is registered but has not been materialized yet")
        row = df.row(0, named=True)
        return Metadata(
            name=model,
            num_layers=row["num_layers"],
            layer_size=row["layer_size"],
            activation_function=row["activation_function"],
            num_total_neurons=row["num_layers"] * row["layer_size"],
            num_total_parameters=row["num_total_parameters"],
            dataset=row["dataset"],
            available_services=available_services(store, model),
            hook=row["hook"],
            loader=row["loader"],
            context_length=row["context_length"],
            num_documents=row["num_documents"],
            num_tokens=row["num_tokens"],
            top_k=row["top_k"],
        )

    return store.derived("metadata", ALL_TABLES, model, build)
