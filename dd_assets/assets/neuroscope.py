"""Neuroscope data: per-token activations of each neuron's chosen documents (second pass)."""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.assets._common import progress_logger, tokens_tensor
from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.neuroscope import gather_activations, round_served
from dd_assets.models import model_shape
from dd_assets.partitions import model_partitions
from dd_assets.resources import ModelLoader, RegistryResource
from dd_assets.tables import NEURON_EXAMPLES


@dg.asset(partitions_def=model_partitions, group_name="neurons", kinds={"delta", "torch"})
def neuron_examples(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    models: ModelLoader,
    dataset_tokens: pl.DataFrame,
    neuron_example_choices: pl.DataFrame,
) -> pl.DataFrame:
    """Per-token activations of every chosen (neuron, document) pair, one forward per document."""
    spec = registry.spec(context.partition_key)
    bridge = models.bridge(spec)
    shape = model_shape(bridge)
    layers = list(range(shape.n_layers))
    tokens = tokens_tensor(dataset_tokens).to(next(bridge.parameters()).device)
    choices = neuron_example_choices
    start = time.monotonic()
    acts = gather_activations(
        LayerActivations(bridge, layers, spec.hook),
        tokens,
        layers,
        choices["layer"].to_numpy(),
        choices["neuron"].to_numpy(),
        choices["doc_index"].to_numpy(),
        spec.batch_size,
        progress=progress_logger(context, "second pass documents"),
    )
    # Round once and take the extremes and argmax from the rounded values: a text's
    # max_activation is then exactly the largest activation served with it.
    acts = round_served(acts)
    body = acts[:, 1:]  # BOS excluded from the per-text extremes, as in the ranking
    argmax = body.argmax(axis=1).astype(np.int32) + 1
    frame = choices.drop("doc_max").with_columns(
        pl.Series("activations", acts),
        pl.Series("max_activation", body.max(axis=1)),
        pl.Series("min_activation", body.min(axis=1)),
        pl.Series("max_activating_token_index", argmax),
    )
    context.add_output_metadata(
        {
            "seconds": time.monotonic() - start,
            "documents_rerun": int(np.unique(choices["doc_index"].to_numpy()).size),
            "examples": frame.height,
        }
    )
    return frame.cast(dict(NEURON_EXAMPLES.schema))
