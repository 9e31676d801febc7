"""Neuron explanations with simulation scores, one partition per (model, layer)."""

import time
import zlib

import dagster as dg
import numpy as np
import polars as pl

from dd_assets import storage
from dd_assets.assets._common import progress_logger
from dd_assets.methods.explain.client import Budget, ChatClient, ClientConfig, ReplyCache
from dd_assets.methods.explain.llm import explain_neurons
from dd_assets.methods.explain.offline import offline_explanations
from dd_assets.methods.explain.records import Excerpts, cut_excerpts, with_random_windows
from dd_assets.partitions import MODEL_TO_LAYERS, model_layer_partitions, split_key
from dd_assets.resources import ExplainerResource
from dd_assets.tables import (
    ACTIVATION_SAMPLE,
    ACTIVATION_SAMPLE_WINDOWS,
    DATASET_TOKENS,
    EXPLANATIONS,
    LOGIT_EFFECTS,
    MODEL_METADATA,
    N2G_GRAPHS,
    NEURON_EXAMPLES,
)


def vocabulary(tokens: pl.DataFrame) -> list[str]:
    """Token id -> string, from the ids and strings the dataset stores side by side."""
    pairs = (
        tokens.select(pl.col("token_ids").explode(), pl.col("tokens").explode())
        .unique("token_ids")
        .sort("token_ids")
    )
    ids = pairs["token_ids"].to_numpy()
    vocab = np.full(int(ids.max(initial=-1)) + 1, "", dtype=object)
    vocab[ids] = pairs["tokens"].to_list()
    return vocab.tolist()


def add_sampled_windows(
    root: str, model: str, layer: int, excerpts: Excerpts, doc_ids: np.ndarray, d_mlp: int
) -> Excerpts:
    """The random half of the score set from the scan's seeded sample of dataset windows (5 per
    neuron, none from its explain documents); unchanged (quantile-band excerpts) without one."""
    windows = storage.read(root, ACTIVATION_SAMPLE_WINDOWS, model).sort("window")
    sample = storage.read(root, ACTIVATION_SAMPLE, model, [layer]).sort("neuron")
    if not windows.height or not sample.height:
        return excerpts
    n, length = windows.height, int(windows["length"][0])
    docs = windows["doc_index"].to_numpy()
    pos = windows["start"].to_numpy()[:, None] + np.arange(length)[None, :]
    acts = np.zeros((d_mlp, n, length), dtype=np.float32)  # [neuron, window, pos]
    acts[sample["neuron"].to_numpy()] = (
        sample["activations"].list.to_array(n * length).to_numpy().reshape(-1, n, length)
    )
    return with_random_windows(
        excerpts, docs, windows["start"].to_numpy(), doc_ids[docs[:, None], pos], acts, seed=layer
    )


def layer_excerpts(root: str, model: str, layer: int, d_mlp: int) -> tuple[Excerpts, list[str]]:
    """One layer's explain and score excerpts (top windows, the sampled random half) and the
    vocabulary, from the stored examples, dataset tokens and activation sample."""
    tokens = storage.read(root, DATASET_TOKENS, model).sort("doc_index")
    examples = storage.read(root, NEURON_EXAMPLES, model, [layer])
    doc_ids = np.asarray(tokens["token_ids"].to_list(), dtype=np.int64)
    excerpts = cut_excerpts(
        examples["neuron"].to_numpy(),
        examples["kind"].to_numpy(),
        examples["rank"].to_numpy(),
        examples["doc_index"].to_numpy(),
        examples["activations"].list.to_array(tokens["token_ids"].list.len()[0]).to_numpy(),
        examples["max_activating_token_index"].to_numpy(),
        doc_ids,
        seed=layer,
    )
    excerpts = add_sampled_windows(root, model, layer, excerpts, doc_ids, d_mlp)
    return excerpts, vocabulary(tokens)


def data_identity(meta: pl.DataFrame) -> list[str | int]:
    """What the excerpts were cut from (dataset, context length, top-k), for the reply cache key."""
    row = meta.row(0, named=True)
    return [str(row["dataset"]), int(row["context_length"]), int(row["top_k"])]


def llm_sample(model: str, layer: int, d_mlp: int, n: int) -> list[int]:
    """The neurons an LLM explains in this partition: a fixed random sample, so re-runs (and the
    cache) see the same neurons."""
    rng = np.random.default_rng(zlib.crc32(f"{model}/{layer}".encode()))
    return sorted(rng.choice(d_mlp, size=min(max(n, 0), d_mlp), replace=False).tolist())


@dg.asset(
    partitions_def=model_layer_partitions,
    group_name="neurons",
    kinds={"delta", "openai"},
    deps=[
        dg.AssetDep("neuron_examples", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("activation_sample", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("activation_sample_windows", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("dataset_tokens", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("model_metadata", partition_mapping=MODEL_TO_LAYERS),
        dg.AssetDep("logit_effects"),
        dg.AssetDep("n2g_graphs"),
    ],
    output_required=False,
)
def explanations(context: dg.AssetExecutionContext, explainer: ExplainerResource):
    """An explanation and held-out simulation score for every neuron of one layer.

    With an LLM endpoint configured, a budgeted sample of neurons is explained and scored by it;
    every other neuron gets the offline explainer (its own top tokens, context and output tokens,
    scored by a token-lookup simulator). Each row names its explainer and scorer.
    """
    model, layer = split_key(context.partition_key)
    root = explainer.data_root
    meta = storage.read(root, MODEL_METADATA, model)
    n_layers = int(meta["num_layers"][0]) if meta.height else 0
    if layer is None or not 0 <= layer < n_layers:
        context.log.warning(
            f"{model} has {n_layers} layers; partition layer={layer} names none of them, "
            "so nothing is materialized"
        )
        return
    start = time.monotonic()
    d_mlp = int(meta["layer_size"][0])
    excerpts, vocab = layer_excerpts(root, model, layer, d_mlp)
    logits = storage.read(root, LOGIT_EFFECTS, model, [layer])
    outputs = dict(zip(logits["neuron"].to_list(), logits["top_tokens"].to_list(), strict=True))
    graphs = storage.read(
        root, N2G_GRAPHS, model, [layer], ["neuron", "activating_tokens", "important_tokens"]
    )
    graph_tokens = {n: (a, i) for n, a, i in graphs.iter_rows() if a}
    frame = offline_explanations(
        excerpts, vocab, range(d_mlp), output_tokens=outputs, graph_tokens=graph_tokens
    )
    meta_out: dict = {"offline_seconds": time.monotonic() - start}

    if explainer.uses_llm:
        if not explainer.explainer_model:
            raise ValueError("DEEPDECIPHER_EXPLAINER_BASE_URL is set but no explainer model")
        config = ClientConfig(
            base_url=explainer.base_url,
            explainer_model=explainer.explainer_model,
            simulator_model=explainer.simulator_model or explainer.explainer_model,
            concurrency=explainer.concurrency,
            simulator=explainer.simulator,
        )
        budget = Budget(explainer.max_tokens or None)
        cache = ReplyCache(explainer.cache_path(model, layer))
        client = ChatClient(config)
        sample = llm_sample(model, layer, d_mlp, explainer.max_neurons)
        results = explain_neurons(
            client, cache, budget, model, layer, sample, excerpts, vocab,
            progress=progress_logger(context, f"explanations layer {layer}"),
            data_key=data_identity(meta),
        )  # fmt: skip
        if results:
            llm = pl.DataFrame([r.__dict__ for r in results]).drop("tokens_used")
            llm = llm.select(frame.columns).cast(dict(frame.schema))
            frame = pl.concat([frame.filter(~pl.col("neuron").is_in(llm["neuron"])), llm])
        failed = sum(r.status != "ok" for r in results)
        meta_out.update(
            llm_neurons=len(results),
            llm_failed=failed,
            llm_tokens=budget.used,
            llm_requests=client.requests,
            llm_retries=client.retries,
        )
        if failed:
            context.log.warning(f"{failed} of {len(results)} LLM explanations failed")
    frame = frame.with_columns(
        pl.lit(model).alias("model"), pl.lit(layer).cast(pl.Int32).alias("layer")
    ).cast(dict(EXPLANATIONS.schema))
    meta_out.update(neurons=frame.height, seconds=time.monotonic() - start)
    for scorer, rows in frame.group_by("scorer", maintain_order=True):
        scores = rows["score"].drop_nulls()
        meta_out[f"scored by {scorer[0]}"] = scores.len()
        meta_out[f"mean score by {scorer[0]}"] = float(scores.mean()) if scores.len() else None
    meta_out["unscored"] = frame["score"].null_count()
    yield dg.Output(frame, metadata=meta_out)
