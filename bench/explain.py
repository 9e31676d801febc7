"""Offline explainer throughput and score distribution on a materialized model.

    .venv/bin/python bench/explain.py [--model smollm2-135m] [--layers 0,5,29] [--auroc]

Reads `neuron_examples`, `dataset_tokens`, `logit_effects` (and the scan's activation sample,
where there is one) from DEEPDECIPHER_DATA_ROOT (read only; nothing is written), explains and
scores every neuron of each layer offline, and prints neurons/s (compute only, and with the
layer's reads) and, per layer and scorer, the score distribution: count, scored, unscored, mean,
quartiles, share >= 0.8, mean top-only and random-only scores; then the same for all layers, the
unscored reasons, and the stored `explanations` table's figures ("before", if it was written by
older code). The baseline in the same run is the bare read of the layer's inputs. Then it builds
the API's explanation-search index (words only) and times queries against it (p50/p99,
in-process, no HTTP). The hybrid route over HTTP is timed by bench/search.py.
With --auroc it embeds the dataset's window grid (as the `window_embeddings`
asset does; the stored table is not read) and the explanations, scores every neuron by embedding
AUROC (`embedding-auroc-v1`) and prints that distribution per layer and explanation kind, with
the seconds each step adds to the main job.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from dd_api.query.search import ExplanationIndex
from dd_assets import storage
from dd_assets.assets.embedding_scores import EXAMPLE_COLUMNS
from dd_assets.assets.explanations import add_sampled_windows, vocabulary
from dd_assets.assets.window_embeddings import GRID
from dd_assets.methods.explain.embedding_score import layer_embedding_scores
from dd_assets.methods.explain.offline import offline_explanations
from dd_assets.methods.explain.records import cut_excerpts
from dd_assets.methods.explain.semantic import embed_explanations
from dd_assets.methods.explain.summary import scorer_summaries
from dd_assets.methods.explain.windows import grid_windows
from dd_assets.methods.sentence_encoder import default_encoder
from dd_assets.settings import data_root
from dd_assets.tables import (
    ACTIVATION_SAMPLE_WINDOWS,
    DATASET_TOKENS,
    EXPLANATIONS,
    LOGIT_EFFECTS,
    MODEL_METADATA,
    NEURON_EXAMPLES,
)


def per_scorer(frame: pl.DataFrame) -> list[dict]:
    """The API's per-scorer summary; a table written before `score_status` existed gets its
    columns filled in (null) so its nulls still count as unscored."""
    for c in ("kind", "score_status"):
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit("?").alias(c))
    for c in ("score_top", "score_random"):
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    return scorer_summaries(frame)


def print_row(layer: str, r: dict) -> None:
    def f(x: float | None) -> str:
        return f"{x:6.3f}" if x is not None else f"{'-':>6}"

    q = r["quartiles"] or [None] * 3
    print(f"{layer:>5} {r['scorer']:<20} {r['count']:5d} {r['scored']:6d} {r['unscored']:8d} "
          f"{f(r['mean_score'])} {f(q[0])} {f(q[1])} {f(q[2])} {f(r['share_at_least_0_8'])} "
          f"{f(r['mean_score_top'])} {f(r['mean_score_random'])}")  # fmt: skip


def embedding_auroc(root: str, model: str, layers: list[int], after: pl.DataFrame) -> None:
    """Embedding AUROC of every neuron of `layers`, as the pipeline computes it, with timings:
    the window grid (once per model), the explanation vectors (the lead-in, per layer) and the
    scoring itself, against the bare read of the layer's inputs (the baseline)."""
    meta = storage.read(root, MODEL_METADATA, model)
    d_mlp, ctx = int(meta["layer_size"][0]), int(meta["context_length"][0])
    tokens = storage.read(root, DATASET_TOKENS, model).sort("doc_index")
    encoder = default_encoder()
    t0 = time.perf_counter()
    docs, starts, width, texts = grid_windows(
        tokens["doc_index"].to_list(), tokens["tokens"].to_list(), GRID
    )
    windows = encoder.embed(texts)
    grid_s = time.perf_counter() - t0
    n_tokens = sum(len(e.ids) for e in encoder.tokenizer.encode_batch(texts))
    print(f"window grid: {len(texts)} windows of {width} tokens every {GRID.stride}, "
          f"{n_tokens} encoder tokens, embedded in {grid_s:.1f} s (once per model)")  # fmt: skip
    sample = storage.read(root, ACTIVATION_SAMPLE_WINDOWS, model)
    spans = tuple(sample[c].to_numpy() for c in ("doc_index", "start", "length"))
    read_s = embed_s = score_s = 0.0
    frames, controls = [], []
    for layer in layers:
        t0 = time.perf_counter()
        ex = storage.read(root, NEURON_EXAMPLES, model, [layer], EXAMPLE_COLUMNS)
        t1 = time.perf_counter()
        mine = after.filter((pl.col("layer") == layer) & (pl.col("status") == "ok"))
        vectors = embed_explanations(encoder, mine["kind"].to_list(), mine["explanation"].to_list())
        t2 = time.perf_counter()
        columns = {c: ex[c].to_numpy() for c in EXAMPLE_COLUMNS}
        frame = layer_embedding_scores(
            d_mlp, ctx, columns, mine["neuron"].to_numpy(), vectors, docs, starts, windows, spans,
            grid=GRID,
        )  # fmt: skip
        t3 = time.perf_counter()
        # Control: each neuron scored with another neuron's explanation (seeded shuffle). A
        # score that only measured how "typical" top windows are would not drop to 0.5 here.
        shuffled = np.random.default_rng(layer).permutation(len(vectors))
        control = layer_embedding_scores(
            d_mlp, ctx, columns, mine["neuron"].to_numpy(), vectors[shuffled], docs, starts,
            windows, spans, grid=GRID,
        )["score"]  # fmt: skip
        controls.append(control)
        read_s, embed_s, score_s = read_s + t1 - t0, embed_s + t2 - t1, score_s + t3 - t2
        frame = frame.join(mine.select("neuron", "kind"), on="neuron", how="left")
        frame = frame.with_columns(pl.lit(layer).alias("layer"), pl.col("kind").fill_null("none"))
        frames.append(frame)
        for row in scorer_summaries(frame, by=("scorer", "kind")):
            print_row(str(layer), {**row, "scorer": f"{row['scorer']} {row['kind'][0]}"})
        print(f"{layer:>5} control, shuffled explanations: mean {control.mean():.3f}, "
              f"share >= 0.8 {(control.drop_nulls() >= 0.8).mean():.3f}")  # fmt: skip
    all_layers = pl.concat(frames)
    control = pl.concat(controls).drop_nulls()
    print(f"  all control, shuffled explanations: mean {control.mean():.3f}, "
          f"share >= 0.8 {(control >= 0.8).mean():.3f}")  # fmt: skip
    for row in scorer_summaries(all_layers, by=("scorer", "kind")):
        print_row("all", {**row, "scorer": f"{row['scorer']} {row['kind'][0]}"})
        for status, count in row["unscored_reasons"].items():
            print(f"  {row['scorer']} {row['kind'][0]}: {count} {status}")
    n = len(layers)
    print(f"embedding AUROC, {n} layers: scoring {score_s:.2f} s ({score_s / n:.3f} s/layer), "
          f"baseline: reading its inputs {read_s:.2f} s (ratio {score_s / max(read_s, 1e-9):.2f}); "
          f"explanation vectors {embed_s:.1f} s; window grid {grid_s:.1f} s")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--layers", default="", help="comma-separated; default: every layer")
    p.add_argument("--auroc", action="store_true", help="also score by embedding AUROC")
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
    print(f"{'layer':>5} {'scorer':<20} {'n':>5} {'scored':>6} {'unscored':>8} {'mean':>6} "
          f"{'q25':>6} {'q50':>6} {'q75':>6} {'>=0.8':>6} {'top':>6} {'random':>6}")  # fmt: skip
    read_s = compute_s = 0.0
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
        excerpts = add_sampled_windows(root, args.model, layer, excerpts, doc_ids, d_mlp)
        outputs = dict(zip(logits["neuron"].to_list(), logits["top_tokens"].to_list(), strict=True))
        frame = offline_explanations(excerpts, vocab, range(d_mlp), output_tokens=outputs)
        t2 = time.perf_counter()
        read_s += t1 - t0
        compute_s += t2 - t1
        frame = frame.with_columns(pl.lit(layer).cast(pl.Int32).alias("layer"))
        frames.append(frame)
        for row in per_scorer(frame):
            print_row(str(layer), row)
    n = len(layers) * d_mlp
    after = pl.concat(frames)
    print(f"offline explainer: {n / compute_s:,.0f} neurons/s compute, "
          f"{n / (compute_s + read_s):,.0f} neurons/s with reads "
          f"(baseline: reading the inputs alone {n / read_s:,.0f} neurons/s); "
          f"{n} neurons in {compute_s + read_s:.1f} s")  # fmt: skip
    print("after (this code), all layers:")
    for row in per_scorer(after):
        print_row("all", row)
    for r in per_scorer(after):
        for status, count in r["unscored_reasons"].items():
            print(f"  {r['scorer']}: {count} {status}")
    stored = storage.read(root, EXPLANATIONS, args.model, layers)
    if stored.height:
        print("before (the stored explanations table), all layers:")
        for row in per_scorer(stored):
            print_row("all", row)
    t0 = time.perf_counter()
    index = ExplanationIndex.build(after)
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
    if args.auroc:
        embedding_auroc(root, args.model, layers, after)
    example = pl.DataFrame(frame).sort("score", descending=True, nulls_last=True).head(3)
    for row in example.iter_rows(named=True):
        print(
            f"  layer {layers[-1]} neuron {row['neuron']}: {row['score']:.3f}  {row['explanation']}"
        )


if __name__ == "__main__":
    main()
