"""The activation scan: one forward pass per model over the dataset, all layers at once.

The scan keeps each neuron's top and bottom documents with their per-token activations, so the
Neuroscope examples come out of it directly; only the quantile picks (known once the scan has seen
its sample) are rerun, over at most ``quantile_sample`` documents.
"""

import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.assets._common import progress_logger, tokens_tensor
from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.neuroscope import (
    ScanConfig,
    ScanResult,
    band_label,
    gather_activations,
    scan,
    served_examples,
)
from dd_assets.models import model_shape
from dd_assets.partitions import model_partitions
from dd_assets.placement import GPU_TAGS
from dd_assets.resources import ModelLoader, RegistryResource
from dd_assets.tables import (
    ACTIVATION_SAMPLE,
    ACTIVATION_SAMPLE_WINDOWS,
    NEURON_EXAMPLE_CHOICES,
    NEURON_EXAMPLES,
    NEURON_STATS,
)


class ScanSettings(dg.Config):
    """Knobs of the scan that are not per-model registry fields."""

    hist_bins: int = ScanConfig.hist_bins
    hist_stride: int = ScanConfig.hist_stride
    quantile_sample: int = ScanConfig.quantile_sample
    per_band: int = ScanConfig.per_band
    sample_windows: int = ScanConfig.sample_windows
    sample_window_len: int = ScanConfig.sample_window_len


def _out(description: str, kinds: set[str]) -> dg.AssetOut:
    return dg.AssetOut(description=description, group_name="neurons", kinds=kinds)


@dg.multi_asset(
    outs={
        "neuron_example_choices": _out(
            "Top-k and bottom-k documents per neuron plus quantile-band samples.", {"delta"}
        ),
        "neuron_stats": _out(
            "Activation statistics per neuron: extremes, mean, std, density, histogram.",
            {"delta", "torch"},
        ),
        "neuron_examples": _out(
            "Neuroscope data: per-token activations of each neuron's chosen documents.",
            {"delta", "torch"},
        ),
        "activation_sample": _out(
            "Every neuron's activations on a seeded sample of token windows.", {"delta"}
        ),
        "activation_sample_windows": _out("The windows of the activation sample.", {"delta"}),
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
    """Stream every document through the model once, keeping per-neuron top/bottom-k and statistics."""
    spec = registry.spec(context.partition_key)
    bridge = models.bridge(spec)
    shape = model_shape(bridge)
    layers = list(range(shape.n_layers))
    reader = LayerActivations(bridge, layers, spec.hook)
    tokens = tokens_tensor(dataset_tokens).to(next(bridge.parameters()).device)
    cfg = ScanConfig(
        top_k=spec.top_k,
        hist_bins=config.hist_bins,
        hist_stride=config.hist_stride,
        quantile_sample=config.quantile_sample,
        per_band=config.per_band,
        sample_windows=config.sample_windows,
        sample_window_len=config.sample_window_len,
    )
    start = time.monotonic()
    result = scan(
        reader, tokens, layers, shape.d_mlp, cfg, spec.batch_size,
        progress=progress_logger(context, "scan documents"),
    )  # fmt: skip
    seconds = time.monotonic() - start
    choices = example_choices_frame(spec.name, result, cfg)
    # Quantile picks: the only documents run a second time.
    start = time.monotonic()
    quantile = choices.filter(pl.col("kind") == "quantile")
    quantile_acts = gather_activations(
        reader,
        tokens,
        layers,
        quantile["layer"].to_numpy(),
        quantile["neuron"].to_numpy(),
        quantile["doc_index"].to_numpy(),
        spec.batch_size,
        progress=progress_logger(context, "quantile documents"),
    )
    second_pass = time.monotonic() - start
    n_tokens = int(tokens.numel())
    common = {
        "seconds": seconds,
        "tokens_per_second": n_tokens / seconds,
        "neurons": shape.n_layers * shape.d_mlp,
        "fast_path": reader.uses_fast_path,
    }
    yield dg.Output(choices, output_name="neuron_example_choices", metadata=common)
    yield dg.Output(stats_frame(spec.name, result), output_name="neuron_stats", metadata=common)
    examples = examples_frame(spec.name, result, quantile, quantile_acts)
    reran = int(np.unique(quantile["doc_index"].to_numpy()).size)
    yield dg.Output(
        examples,
        output_name="neuron_examples",
        metadata={"examples": examples.height, "documents_rerun": reran, "seconds": second_pass},
    )
    yield dg.Output(sample_frame(spec.name, result), output_name="activation_sample")
    yield dg.Output(
        windows_frame(spec.name, result),
        output_name="activation_sample_windows",
        metadata={"positions": int(result.sample_acts.shape[1])},
    )


def _neuron_grid(model: str, layers: list[int], d_mlp: int, per_neuron: int) -> dict[str, object]:
    n = len(layers) * d_mlp * per_neuron
    layer = np.repeat(np.asarray(layers, dtype=np.int32), d_mlp * per_neuron)
    neuron = np.tile(np.repeat(np.arange(d_mlp, dtype=np.int32), per_neuron), len(layers))
    return {"model": [model] * n, "layer": layer, "neuron": neuron}


def _ranked(model: str, r: ScanResult, kind: str, docs: np.ndarray, values: np.ndarray):
    n_layers, d_mlp, k = docs.shape
    return pl.DataFrame(
        {
            **_neuron_grid(model, r.layers, d_mlp, k),
            "kind": kind,
            "rank": np.tile(np.arange(k, dtype=np.int32), n_layers * d_mlp),
            "band": "",
            "doc_index": docs.reshape(-1),
            "doc_max": values.reshape(-1),
        }
    )


def example_choices_frame(model: str, r: ScanResult, cfg: ScanConfig) -> pl.DataFrame:
    """Long table of (neuron, kind, rank) -> document, dropping empty slots."""
    n_layers, d_mlp = r.max.shape
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
    frame = pl.concat(
        [
            _ranked(model, r, "top", r.top_docs, r.top_values),
            _ranked(model, r, "bottom", r.bottom_docs, r.bottom_values),
            quantile,
        ]
    ).filter(pl.col("doc_index") >= 0)
    return frame.cast(dict(NEURON_EXAMPLE_CHOICES.schema))


def examples_frame(
    model: str, r: ScanResult, quantile: pl.DataFrame, quantile_acts: np.ndarray
) -> pl.DataFrame:
    """Top and bottom examples from the scan's state, quantile ones from the second pass."""
    parts = []
    for kind, docs, values, acts in (
        ("top", r.top_docs, r.top_values, r.top_acts),
        ("bottom", r.bottom_docs, r.bottom_values, r.bottom_acts),
    ):
        keep = docs.reshape(-1) >= 0
        choices = _ranked(model, r, kind, docs, values).filter(pl.Series(keep))
        parts.append(served_examples(choices, acts.reshape(-1, acts.shape[-1])[keep]))
    parts.append(served_examples(quantile, quantile_acts))
    return pl.concat(parts).cast(dict(NEURON_EXAMPLES.schema))


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


def sample_frame(model: str, r: ScanResult) -> pl.DataFrame:
    """One row per neuron: its activations at every sampled position."""
    n_layers, positions, d_mlp = r.sample_acts.shape
    per_neuron = np.ascontiguousarray(r.sample_acts.transpose(0, 2, 1)).reshape(-1, positions)
    return pl.DataFrame(
        {**_neuron_grid(model, r.layers, d_mlp, 1), "activations": per_neuron}
    ).cast(dict(ACTIVATION_SAMPLE.schema))


def windows_frame(model: str, r: ScanResult) -> pl.DataFrame:
    n = len(r.window_docs)
    return pl.DataFrame(
        {
            "model": [model] * n,
            "window": np.arange(n, dtype=np.int32),
            "doc_index": r.window_docs,
            "start": r.window_starts.astype(np.int32),
            "length": np.full(n, r.window_len, dtype=np.int32),
        }
    ).cast(dict(ACTIVATION_SAMPLE_WINDOWS.schema))
