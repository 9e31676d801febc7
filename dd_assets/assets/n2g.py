"""Neuron2Graph assets: graphs per (model, layer), then the token index and similar neurons per model.

`n2g_graphs` builds graphs for the most active neurons of a layer (``n2g.neurons_per_layer`` in the
registry; all of them when null), from the Neuroscope top examples already in the tables, so only
N2G's own forward passes (pruning, masking, augmentation) touch the model. The model-level assets
run once every layer has its graphs.
"""

import json
import time

import dagster as dg
import numpy as np
import polars as pl

from dd_assets.assets._common import progress_logger
from dd_assets.methods.n2g.augment import make_augmenter
from dd_assets.methods.n2g.engine import N2G, Document, N2GConfig, NeuronGraph, NeuronInput
from dd_assets.methods.n2g.export import collapse, to_deepdecipher, to_dot, to_svg
from dd_assets.methods.n2g.probe import NeuronProbe
from dd_assets.methods.n2g.sample_fidelity import fidelity_summary
from dd_assets.methods.n2g.similarity import similar_pairs
from dd_assets.methods.token_index import graph_tokens
from dd_assets.models import model_shape, vocabulary_strings
from dd_assets.partitions import (
    MODEL_TO_LAYERS,
    model_layer_partitions,
    model_partitions,
    split_key,
)
from dd_assets.placement import GPU_TAGS
from dd_assets.registry import ModelSpec
from dd_assets.resources import DeltaTables, ModelLoader, RegistryResource
from dd_assets.tables import (
    DATASET_TOKENS,
    N2G_FIDELITY,
    N2G_GRAPHS,
    N2G_TOKEN_INDEX,
    NEURON_EXAMPLES,
    NEURON_SIMILARITY,
    NEURON_STATS,
)

PER_MODEL = {"partition_mapping": MODEL_TO_LAYERS}


def choose_neurons(stats: pl.DataFrame, count: int | None) -> list[int]:
    """The most active live neurons first (by max activation over the dataset)."""
    live = stats.filter(pl.col("max") > 0).sort(["max", "neuron"], descending=[True, False])
    neurons = live["neuron"].to_list()
    return neurons if count is None else neurons[:count]


def neuron_sample(
    stats: pl.DataFrame, top: int | None, random: int, seed: int, layer: int
) -> dict[int, str]:
    """neuron -> the sample it is graphed for: "top" (most active) or "random".

    The random sample is drawn, seeded by (seed, layer), from the layer's live neurons that are
    not already in the top sample, so the per-layer fidelity of the random sample describes a
    typical live neuron rather than the strongest ones.
    """
    ranked = choose_neurons(stats, None)
    chosen = {n: "top" for n in (ranked if top is None else ranked[:top])}
    rest = np.asarray([n for n in ranked if n not in chosen], dtype=np.int64)
    picks = np.random.default_rng([seed, layer]).permutation(rest)[:random]
    chosen.update({int(n): "random" for n in picks})
    return chosen


def neuron_inputs(
    stats: pl.DataFrame, examples: pl.DataFrame, doc_ids: list, neurons: list[int]
) -> list[NeuronInput]:
    maxima = dict(zip(stats["neuron"].to_list(), stats["max"].to_list(), strict=True))
    top = examples.filter((pl.col("kind") == "top") & pl.col("neuron").is_in(neurons))
    inputs = []
    for (neuron,), rows in top.sort("rank").group_by(["neuron"], maintain_order=True):
        docs = [
            Document(np.asarray(doc_ids[d], dtype=np.int64), np.asarray(a, dtype=np.float32), d)
            for d, a in zip(rows["doc_index"].to_list(), rows["activations"].to_list(), strict=True)
        ]
        inputs.append(NeuronInput(int(neuron), float(maxima[neuron]), docs))
    return sorted(inputs, key=lambda i: neurons.index(i.neuron))


def mask_id(spec: ModelSpec, tokenizer) -> int:
    if isinstance(spec.n2g.mask_token, int):
        return spec.n2g.mask_token
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 1


def graph_row(
    model: str, layer: int, augmenter: str, base: float, g: NeuronGraph, sample: str
) -> dict:
    nodes = collapse(g.graph.visual)
    return {
        "model": model,
        "layer": layer,
        "neuron": g.neuron,
        "sample": sample,
        "augmenter": augmenter,
        "base_max_act": base,
        "train_docs": g.train_docs,
        "test_docs": g.test_docs,
        "prompts": g.prompts,
        "samples": g.samples,
        "lines": g.graph.num_lines,
        "precision": g.fidelity.precision,
        "recall": g.fidelity.recall,
        "f1": g.fidelity.f1,
        "baseline_precision": g.baseline.precision,
        "baseline_recall": g.baseline.recall,
        "baseline_f1": g.baseline.f1,
        "test_tokens": g.fidelity.tokens,
        "firing_tokens": g.fidelity.firing,
        "activating_tokens": list(g.activating),
        "activating_values": list(g.activating.values()),
        "important_tokens": list(g.important),
        "trie": json.dumps(g.graph.prediction.to_json(), separators=(",", ":")),
        "graph": json.dumps(to_deepdecipher(nodes), separators=(",", ":")),
        "dot": to_dot(nodes),
        "svg": to_svg(nodes),
    }


@dg.asset(
    partitions_def=model_layer_partitions,
    group_name="n2g",
    kinds={"delta", "torch"},
    deps=[
        dg.AssetDep("neuron_examples", **PER_MODEL),
        dg.AssetDep("neuron_stats", **PER_MODEL),
        dg.AssetDep("dataset_tokens", **PER_MODEL),
    ],
    output_required=False,
    op_tags=GPU_TAGS,
)
def n2g_graphs(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    models: ModelLoader,
    tables: DeltaTables,
):
    """N2G graphs, pictures and held-out fidelity for the layer's top and random neuron samples."""
    model, layer = split_key(context.partition_key)
    spec = registry.spec(model)
    bridge = models.bridge(spec)
    shape = model_shape(bridge)
    if layer is None or not 0 <= layer < shape.n_layers:
        context.log.warning(f"{model} has {shape.n_layers} layers; no layer {layer} to graph")
        return
    stats = tables.read(NEURON_STATS, model, [layer], ["neuron", "max"])
    samples = neuron_sample(
        stats, spec.n2g.neurons_per_layer, spec.n2g.random_per_layer, spec.n2g.sample_seed, layer
    )
    neurons = list(samples)
    examples = tables.read(
        NEURON_EXAMPLES, model, [layer], ["neuron", "kind", "rank", "doc_index", "activations"]
    )
    docs = tables.read(DATASET_TOKENS, model, None, ["doc_index", "token_ids"]).sort("doc_index")
    inputs = neuron_inputs(stats, examples, docs["token_ids"].to_list(), neurons)
    tok = bridge.tokenizer
    vocab = vocabulary_strings(tok, shape.d_vocab)
    special = set(tok.all_special_ids) | {shape.bos_id}
    pad = mask_id(spec, tok)
    probe = NeuronProbe(bridge, layer, spec.hook, pad, spec.n2g.max_batch_tokens)
    augmenter = make_augmenter(spec.n2g.augmenter, bridge, vocab, special, pad)
    cfg = N2GConfig(
        max_augmentations=spec.n2g.max_augmentations,
        augmented_saliency=spec.n2g.augmented_saliency,
        normalize_tokens=spec.n2g.normalize_tokens,
        predict_mode=spec.n2g.predict_mode,
    )
    loggers: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in loggers:
            loggers[stage] = progress_logger(context, f"n2g layer {layer}: {stage}")
        loggers[stage](done, total)

    engine = N2G(probe, vocab, special, pad, augmenter, cfg, progress)
    start = time.monotonic()
    graphs = engine.run(inputs)
    seconds = time.monotonic() - start
    bases = {i.neuron: i.base_max_act for i in inputs}
    rows = [
        graph_row(model, layer, augmenter.name, bases[g.neuron], g, samples[g.neuron])
        for g in graphs
    ]
    frame = (
        pl.DataFrame(rows, schema=N2G_GRAPHS.schema)
        if rows
        else pl.DataFrame(schema=N2G_GRAPHS.schema)
    )
    f1 = [g.fidelity.f1 for g in graphs]
    yield dg.Output(
        frame,
        metadata={
            "neurons": len(graphs),
            "random_sample": sum(samples[g.neuron] == "random" for g in graphs),
            "coverage": len(graphs) / shape.d_mlp,
            "seconds": seconds,
            "neurons_per_second": len(graphs) / max(seconds, 1e-9),
            "model_tokens_per_second": probe.stats.tokens / max(probe.stats.seconds, 1e-9),
            "mean_f1": float(np.mean(f1)) if f1 else 0.0,
            "mean_baseline_f1": float(np.mean([g.baseline.f1 for g in graphs])) if graphs else 0.0,
            "augmenter": augmenter.name,
        },
    )


N2G_LAYERS = dg.AssetDep("n2g_graphs", partition_mapping=MODEL_TO_LAYERS)


@dg.asset(partitions_def=model_partitions, group_name="n2g", kinds={"delta"}, deps=[N2G_LAYERS])
def n2g_token_index(context: dg.AssetExecutionContext, tables: DeltaTables) -> pl.DataFrame:
    """Token -> neurons, from every layer's graphs: the index behind neuron2graph-search."""
    model = context.partition_key
    g = tables.read(
        N2G_GRAPHS,
        model,
        None,
        ["layer", "neuron", "activating_tokens", "activating_values", "important_tokens"],
    )
    frame = graph_tokens(g).with_columns(model=pl.lit(model)).cast(dict(N2G_TOKEN_INDEX.schema))
    context.add_output_metadata({"entries": frame.height, "tokens": frame["token"].n_unique()})
    return frame


@dg.asset(partitions_def=model_partitions, group_name="n2g", kinds={"delta"}, deps=[N2G_LAYERS])
def neuron_similarity(
    context: dg.AssetExecutionContext, registry: RegistryResource, tables: DeltaTables
) -> pl.DataFrame:
    """Similar neurons across all layers, from the overlap of their graphs' token sets."""
    model = context.partition_key
    spec = registry.spec(model)
    g = tables.read(
        N2G_GRAPHS, model, None, ["layer", "neuron", "activating_tokens", "important_tokens"]
    ).sort("layer", "neuron")
    start = time.monotonic()
    pairs = similar_pairs(
        [set(t) for t in g["activating_tokens"].to_list()],
        [set(t) for t in g["important_tokens"].to_list()],
        spec.n2g.similarity_threshold,
        spec.n2g.similarity_compat,
    )
    layers, neurons = g["layer"].to_numpy(), g["neuron"].to_numpy()
    frame = pl.DataFrame(
        {
            "layer": layers[pairs.source],
            "neuron": neurons[pairs.source],
            "other_layer": layers[pairs.target],
            "other_neuron": neurons[pairs.target],
            "similarity": pairs.similarity,
        }
    )
    frame = frame.with_columns(model=pl.lit(model)).cast(dict(NEURON_SIMILARITY.schema))
    context.add_output_metadata(
        {"neurons": g.height, "pairs": frame.height, "seconds": time.monotonic() - start}
    )
    return frame


@dg.asset(partitions_def=model_partitions, group_name="n2g", kinds={"delta"}, deps=[N2G_LAYERS])
def n2g_fidelity(context: dg.AssetExecutionContext, tables: DeltaTables) -> pl.DataFrame:
    """N2G held-out F1 per layer and sample (top, random) with a 95% interval, vs token lookup."""
    model = context.partition_key
    graphs = tables.read(N2G_GRAPHS, model, None, ["layer", "sample", "f1", "baseline_f1"])
    rows = fidelity_summary(graphs)
    frame = pl.DataFrame(
        rows, schema={k: v for k, v in N2G_FIDELITY.schema.items() if k != "model"}
    )
    frame = frame.with_columns(model=pl.lit(model)).cast(dict(N2G_FIDELITY.schema))
    context.add_output_metadata({"rows": frame.height})
    return frame
