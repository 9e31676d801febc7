"""The activation scan: one forward pass per model over the dataset, all layers at once."""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.assets._common import progress_logger, tokens_tensor
from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.neuroscope import ScanConfig, ScanResult, band_label, scan
from dd_assets.models import model_shape
from dd_assets.partitions import model_partitions
from dd_assets.placement import GPU_TAGS
from dd_assets.resources import ModelLoader, RegistryResource
from dd_assets.tables import NEURON_EXAMPLE_CHOICES, NEURON_STATS


class ScanSettings(dg.Config):
    """Knobs of the scan that are not per-model registry fields."""

    hist_bins: int = ScanConfig.hist_bins
    hist_stride: int = ScanConfig.hist_stride
    quantile_sample: int = ScanConfig.quantile_sample
    per_band: int = ScanConfig.per_band


@dg.multi_asset(
    outs={
        "neuron_example_choices": dg.AssetOut(
            description="Top-k documents per neuron (by document max) plus quantile-band samples.",
            group_name="neurons",
            kinds={"delta", "torch"},
        ),
        "neuron_stats": dg.AssetOut(
            description="Activation statistics per neuron: extremes, mean, std, density, histogram.",
            group_name="neurons",
            kinds={"delta", "torch"},
        ),
    },
    partitions_def=model_partitions,
    op_tags=GPU_TAGS,
)
def activation_scan(
    context: dg.AssetExecutionContext,
    config: ScanSettings,
    registry: RegistryResource,
    models: ModelLoader,
    dataset_tokens: pl.DataFrame,
):
    """Stream every document through the model once, keeping per-neuron top-k and statistics."""
    spec = registry.spec(context.partition_key)
    bridge = models.bridge(spec)
    shape = model_shape(bridge)
    layers = list(range(shape.n_layers))
    reader = LayerActivations(bridge, layers, spec.hook)
    tokens = tokens_tensor(dataset_tokens)
    cfg = ScanConfig(
        top_k=spec.top_k,
        hist_bins=config.hist_bins,
        hist_stride=config.hist_stride,
        quantile_sample=config.quantile_sample,
        per_band=config.per_band,
    )
    start = time.monotonic()
    result = scan(
        reader,
        tokens.to(next(bridge.parameters()).device),
        layers,
        shape.d_mlp,
        cfg,
        spec.batch_size,
        progress=progress_logger(context, "scan documents"),
    )
    seconds = time.monotonic() - start
    n_tokens = int(tokens.numel())
    choices = example_choices_frame(spec.name, result, cfg)
    stats = stats_frame(spec.name, result)
    common = {
        "seconds": seconds,
        "tokens_per_second": n_tokens / seconds,
        "neurons": shape.n_layers * shape.d_mlp,
        "fast_path": reader.uses_fast_path,
    }
    yield dg.Output(choices, output_name="neuron_example_choices", metadata=common)
    yield dg.Output(stats, output_name="neuron_stats", metadata=common)


def _neuron_grid(model: str, layers: list[int], d_mlp: int, per_neuron: int) -> dict[str, object]:
    n = len(layers) * d_mlp * per_neuron
    layer = np.repeat(np.asarray(layers, dtype=np.int32), d_mlp * per_neuron)
    neuron = np.tile(np.repeat(np.arange(d_mlp, dtype=np.int32), per_neuron), len(layers))
    return {"model": [model] * n, "layer": layer, "neuron": neuron}


def example_choices_frame(model: str, r: ScanResult, cfg: ScanConfig) -> pl.DataFrame:
    """Long table of (neuron, kind, rank) -> document, dropping empty slots."""
    n_layers, d_mlp, k = r.top_docs.shape
    top = pl.DataFrame(
        {
            **_neuron_grid(model, r.layers, d_mlp, k),
            "kind": "top",
            "rank": np.tile(np.arange(k, dtype=np.int32), n_layers * d_mlp),
            "band": "",
            "doc_index": r.top_docs.reshape(-1),
            "doc_max": r.top_values.reshape(-1),
        }
    )
    bands, per_band = r.quantile_docs.shape[2:]
    labels = [band_label(lo, hi) for lo, hi in cfg.bands]
    quantile = pl.DataFrame(
        {
            **_neuron_grid(model, r.layers, d_mlp, bands * per_band),
            "kind": "quantile",
            "rank": np.tile(np.arange(bands * per_band, dtype=np.int32), n_layers * d_mlp),
            "band": np.tile(np.repeat(labels, per_band), n_layers * d_mlp),
            "doc_index": r.quantile_docs.reshape(-1),
            "doc_max": r.quantile_values.reshape(-1),
        }
    )
    frame = pl.concat([top, quantile]).filter(pl.col("doc_index") >= 0)
    return frame.cast(dict(NEURON_EXAMPLE_CHOICES.schema))


def stats_frame(model: str, r: ScanResult) -> pl.DataFrame:
    n_layers, d_mlp = r.max.shape
    return pl.DataFrame(
        {
            **_neuron_grid(model, r.layers, d_mlp, 1),
            "count": r.count.reshape(-1),
            "max": r.max.reshape(-1),
            "min": r.min.reshape(-1),
            "mean": r.mean.reshape(-1),
            "std": r.std.reshape(-1),
            "frac_positive": r.frac_positive.reshape(-1),
            "hist_edges": r.hist_edges.reshape(n_layers * d_mlp, -1),
            "hist_counts": r.hist_counts.reshape(n_layers * d_mlp, -1),
        }
    ).cast(dict(NEURON_STATS.schema))
