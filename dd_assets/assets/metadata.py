"""Model metadata: DeepDecipher's metadata fields plus how the data was computed."""

import dagster as dg
import polars as pl

from dd_assets.methods.hooks import hook_name, is_nonnegative
from dd_assets.models import model_shape
from dd_assets.partitions import model_partitions
from dd_assets.resources import ModelLoader, RegistryResource
from dd_assets.tables import MODEL_METADATA


@dg.asset(partitions_def=model_partitions, group_name="dataset", kinds={"delta"})
def model_metadata(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    models: ModelLoader,
    dataset_tokens: pl.DataFrame,
) -> pl.DataFrame:
    """One row describing the model (layers, neurons, parameters) and its dataset."""
    spec = registry.spec(context.partition_key)
    shape = model_shape(models.bridge(spec))
    context.add_output_metadata({"num_layers": shape.n_layers, "layer_size": shape.d_mlp})
    return pl.DataFrame(
        {
            "model": [spec.name],
            "num_layers": [shape.n_layers],
            "layer_size": [shape.d_mlp],
            "activation_function": [shape.act_fn],
            "nonnegative": [is_nonnegative(shape.act_fn, spec.hook)],
            "num_total_parameters": [shape.num_parameters],
            "dataset": [spec.dataset.describe()],
            "hook": [hook_name(0, spec.hook).replace("blocks.0.", "blocks.{layer}.")],
            "loader": [spec.loader.describe()],
            "context_length": [spec.context_length],
            "num_documents": [dataset_tokens.height],
            "num_tokens": [dataset_tokens.height * spec.context_length],
            "top_k": [spec.top_k],
        }
    ).cast(dict(MODEL_METADATA.schema))
