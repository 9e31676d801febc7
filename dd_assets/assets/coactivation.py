"""Similar neurons of every neuron, across all layers, from the activation sample."""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.assets._common import list_matrix, progress_logger
from dd_assets.methods.coactivation import METHOD, top_correlations
from dd_assets.partitions import model_partitions
from dd_assets.tables import NEURON_COACTIVATION

TOP_K = 10


@dg.asset(partitions_def=model_partitions, group_name="neurons", kinds={"delta", "torch"})
def neuron_coactivation(
    context: dg.AssetExecutionContext, activation_sample: pl.DataFrame
) -> pl.DataFrame:
    """Each neuron's 10 most (anti-)correlated neurons of any layer, on the activation sample."""
    model = context.partition_key
    sample = activation_sample.sort("layer", "neuron")
    x = list_matrix(sample["activations"]).T  # [pos, neuron]
    positions = x.shape[0]
    start = time.monotonic()
    similar = top_correlations(
        x, TOP_K, progress=progress_logger(context, "co-activation block pairs")
    )
    seconds = time.monotonic() - start
    layers, neurons = sample["layer"].to_numpy(), sample["neuron"].to_numpy()
    src = np.repeat(np.arange(len(layers)), TOP_K)
    dst = similar.index.reshape(-1)
    keep = dst >= 0
    src, dst = src[keep], dst[keep]
    frame = pl.DataFrame(
        {
            "layer": layers[src],
            "neuron": neurons[src],
            "rank": np.tile(np.arange(TOP_K, dtype=np.int32), len(layers))[keep],
            "other_layer": layers[dst],
            "other_neuron": neurons[dst],
            "correlation": similar.correlation.reshape(-1)[keep],
        }
    ).with_columns(
        model=pl.lit(model), method=pl.lit(METHOD), sample_positions=pl.lit(positions, pl.Int32)
    )
    context.add_output_metadata(
        {"neurons": len(layers), "positions": positions, "pairs": frame.height, "seconds": seconds}
    )
    return frame.cast(dict(NEURON_COACTIVATION.schema))
