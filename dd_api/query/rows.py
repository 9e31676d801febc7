"""A neuron's one row in a per-neuron table, or ``MissingData`` naming the table."""

from __future__ import annotations

from typing import Any

from dd_api.query.errors import MissingData
from dd_api.query.refs import NeuronRef
from dd_api.query.store import DataStore
from dd_assets.tables import TableSpec


def neuron_row(store: DataStore, table: TableSpec, ref: NeuronRef, why: str = "") -> dict[str, Any]:
    """The row of `ref` as scalars/arrays; MissingData (200 for the client) if it has none."""
    rows = store.neuron_rows(table, ref.model.name, ref.layer, ref.neuron)
    if len(rows["neuron"]) == 0:
        detail = f"{table.name} has no row for neuron {ref.neuron} of layer {ref.layer}"
        raise MissingData([table.name], f"{detail}{f' ({why})' if why else ''}")
    return {name: col[0] for name, col in rows.items()}
