"""Offline explainer throughput and score distribution on a materialized model.

    .venv/bin/python bench/explain.py [--model smollm2-135m] [--layers 0,5,29]

Reads `neuron_examples`, `dataset_tokens` and `logit_effects` from DEEPDECIPHER_DATA_ROOT (read
only; nothing is written), explains and scores every neuron of each layer offline, and prints
neurons/s (compute only, and with the layer's reads) and the score distribution per layer: mean,
quartiles, and how many neurons have an undefined score. The baseline in the same run is the bare
read of the layer's inputs. Then it builds the API's explanation-search index over every neuron's
explanation and times queries against it (p50/p99, in-process, no HTTP).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from dd_api.query.search import ExplanationIndex
from dd_assets import storage
from dd_assets.assets.explanations import vocabulary
from dd_assets.methods.explain.offline import offline_explanations
from dd_assets.methods.explain.records import cut_excerpts
from dd_assets.settings import data_root
from dd_assets.tables import DATASET_TOKENS, LOGIT_EFFECTS, MODEL_METADATA, NEURON_EXAMPLES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--layers", default="", help="comma-separated; default: every layer")
    args = p.parse_args()
    root = data_root()
    meta = storage.read(root, MODEL_METADATA, args.model)
    if not meta.height:
        raise SystemExit(f"{args.model} is not materialized under {root}")
    n_layers, d_mlp = int(meta["num_layers"][0]), int(meta["layer_size"][0])
    layers = [int(x) for x in args.layers.split(",")] if args.layers else list(range(n_layers))
    tokens = storage.read(root, DATASET_TOKENS, args.model).sort("doc_index")
    doc_ids = np.asarray(tokens["token_ids"].to_list(), dtype=np.int64)
    vocab = vocabulary(tokens)
    ctx = doc_ids.shape[1]
    print(f"{args.model}: {len(layers)} layers x {d_mlp} neurons, data root {root}")
    print(f"{'layer':>5} {'read s':>7} {'explain s':>9} {'mean':>6} {'q25':>6} {'q50':>6} "
          f"{'q75':>6} {'null':>5}")  # fmt: skip
    read_s = compute_s = 0.0
    all_scores = []
    frames = []
    for layer in layers:
        t0 = time.perf_counter()
        ex = storage.read(root, NEURON_EXAMPLES, args.model, [layer])
        logits = storage.read(root, LOGIT_EFFECTS, args.model, [layer])
        t1 = time.perf_counter()
        excerpts = cut_excerpts(
            ex["neuron"].to_numpy(), ex["kind"].to_numpy(), ex["rank"].to_numpy(),
            ex["doc_index"].to_numpy(), ex["activations"].list.to_array(ctx).to_numpy(),
            ex["max_activating_token_index"].to_numpy(), doc_ids, seed=layer,
        )  # fmt: skip
        outputs = dict(zip(logits["neuron"].to_list(), logits["top_tokens"].to_list(), strict=True))
        frame = offline_explanations(excerpts, vocab, range(d_mlp), output_tokens=outputs)
        t2 = time.perf_counter()
        read_s += t1 - t0
        compute_s += t2 - t1
        s = frame["score"].drop_nulls().to_numpy()
        all_scores.append(s)
        frames.append(frame.with_columns(pl.lit(layer).cast(pl.Int32).alias("layer")))
        q = np.quantile(s, [0.25, 0.5, 0.75]) if s.size else [np.nan] * 3
        print(f"{layer:5d} {t1 - t0:7.2f} {t2 - t1:9.2f} {s.mean() if s.size else np.nan:6.3f} "
              f"{q[0]:6.3f} {q[1]:6.3f} {q[2]:6.3f} {frame['score'].null_count():5d}")  # fmt: skip
    n = len(layers) * d_mlp
    s = np.concatenate(all_scores)
    print(f"offline explainer: {n / compute_s:,.0f} neurons/s compute, "
          f"{n / (compute_s + read_s):,.0f} neurons/s with reads "
          f"(baseline: reading the inputs alone {n / read_s:,.0f} neurons/s); "
          f"{n} neurons in {compute_s + read_s:.1f} s")  # fmt: skip
    print(f"all layers: mean score {s.mean():.3f}, quartiles "
          f"{', '.join(f'{v:.3f}' for v in np.quantile(s, [0.25, 0.5, 0.75]))}, "
          f"undefined {n - s.size} of {n}")  # fmt: skip
    t0 = time.perf_counter()
    index = ExplanationIndex.build(pl.concat(frames))
    build_s = time.perf_counter() - t0
    queries = ["tokens", "promotes", "def", "self", "after", "return", "the", "import os", "zzz"]
    timings = []
    for i in range(2000):
        q = queries[i % len(queries)]
        t0 = time.perf_counter()
        index.search(q, 20, (i % 3) * 20)
        timings.append(time.perf_counter() - t0)
    p50, p99 = np.quantile(timings, [0.5, 0.99]) * 1e3
    print(f"search index over {len(index.layer)} explanations: built in {build_s:.2f} s; "
          f"query p50 {p50:.2f} ms, p99 {p99:.2f} ms")  # fmt: skip
    example = pl.DataFrame(frame).sort("score", descending=True, nulls_last=True).head(3)
    for row in example.iter_rows(named=True):
        print(
            f"  layer {layers[-1]} neuron {row['neuron']}: {row['score']:.3f}  {row['explanation']}"
        )


if __name__ == "__main__":
    main()
