"""Dagster partitions: models are dynamic (the registry sensor adds them), layers too.

Per-layer assets use the ``model x layer`` cross product. Models have different layer counts, so
the product holds keys that name no real layer (layer 40 of a 30-layer model). Those keys are never
requested by the sensors or the CLI, and if someone launches one by hand the asset materializes
nothing and logs why (see `layer_partition`), rather than failing or writing empty data.
"""

from __future__ import annotations

import dagster as dg

model_partitions = dg.DynamicPartitionsDefinition(name="model")
layer_partitions = dg.DynamicPartitionsDefinition(name="layer")
model_layer_partitions = dg.MultiPartitionsDefinition(
    {"model": model_partitions, "layer": layer_partitions}
)

# Model-level upstream of a per-layer asset: every layer of a model reads that model's partition.
MODEL_TO_LAYERS = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="model")


def layer_key(model: str, layer: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"model": model, "layer": str(layer)})


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, int | None]:
    """(model, layer) of a partition key; layer is None for model-level keys."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["model"], int(dims["layer"])
    return key, None
