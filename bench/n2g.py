"""Neuron2Graph throughput: shared-prefix saliency vs whole masked copies, and vs a bare forward.

    .venv/bin/python bench/n2g.py                      # default model, data from ./data
    .venv/bin/python bench/n2g.py --layers 0 15 29 --neurons 3

For each chosen layer, runs N2G twice as the pipeline does (registry settings, the layer's most
active neurons, Neuroscope examples from the tables), in the same process:

- "whole": every masked copy of saliency run whole (the reference way), through a probe that
  records every batch it sends to the model; those batches are then replayed through a bare
  forward pass of the whole model (no hooks, no early stop): model tokens/s of both and their
  ratio (goal >= 0.8);
- "shared": the pipeline's probe, where each copy runs only its suffix against the original's
  keys and values. Printed: its time, the ratio shared / whole, and whether every graph (tokens,
  values, fidelity) came out the same.

With ``--fidelity``, also prints mean precision/recall/F1 per layer from the stored ``n2g_graphs``
table next to the token-lookup baseline on the same held-out tokens.
"""

from __future__ import annotations

import argparse
import time

import polars as pl
import torch

from dd_assets import storage
from dd_assets.assets.n2g import choose_neurons, mask_id, neuron_inputs
from dd_assets.methods.n2g.augment import make_augmenter
from dd_assets.methods.n2g.engine import N2G, N2GConfig
from dd_assets.methods.n2g.probe import NeuronProbe
from dd_assets.models import load_bridge, model_shape, vocabulary_strings
from dd_assets.registry import load_registry
from dd_assets.settings import data_root, registry_path
from dd_assets.tables import DATASET_TOKENS, N2G_GRAPHS, NEURON_EXAMPLES, NEURON_STATS


class RecordingProbe(NeuronProbe):
    """A NeuronProbe that keeps the padded batches it ran, for the bare-forward replay."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[torch.Tensor] = []
        inner = self.reader

        def record(tokens: torch.Tensor):
            self.batches.append(tokens)
            return inner(tokens)

        self.reader = record


@torch.inference_mode()
def bare_forward(bridge, batches: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    model = getattr(bridge, "original_model", bridge)
    for tokens in batches:
        model(tokens)
    return time.perf_counter() - start


def summary(g) -> tuple:
    """What a graph serves: its tokens and values, and its held-out fidelity."""
    return (g.activating, g.important, g.fidelity.f1, g.baseline.f1, g.graph.num_lines)


def fidelity_table(root: str, model: str) -> None:
    g = storage.read(root, N2G_GRAPHS, model)
    if g.height == 0:
        print("no n2g_graphs rows: run `deepdecipher materialize` first")
        return
    per_layer = (
        g.group_by("layer")
        .agg(
            pl.len().alias("neurons"),
            pl.col("precision").mean(),
            pl.col("recall").mean(),
            pl.col("f1").mean(),
            pl.col("baseline_precision").mean(),
            pl.col("baseline_recall").mean(),
            pl.col("baseline_f1").mean(),
        )
        .sort("layer")
    )
    print("\nfidelity on held-out examples (firing class, normalised activation >= 0.5)")
    print("layer  neurons   N2G P    R     F1   | lookup P   R     F1")
    for r in per_layer.iter_rows(named=True):
        print(
            f"{r['layer']:5d}  {r['neurons']:7d}   {fmt(r['precision'])} {fmt(r['recall'])} "
            f"{fmt(r['f1'])} |  {fmt(r['baseline_precision'])} {fmt(r['baseline_recall'])} "
            f"{fmt(r['baseline_f1'])}"
        )
    wins = int((per_layer["f1"] > per_layer["baseline_f1"]).sum())
    print(
        f"all: {g.height} neurons, mean F1 {g['f1'].mean():.3f} vs lookup "
        f"{g['baseline_f1'].mean():.3f}; N2G ahead on {wins} of {per_layer.height} layers; "
        f"augmenter {', '.join(sorted(set(g['augmenter'])))}"
    )


def fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--layers", type=int, nargs="+", default=[0, 15, 29])
    p.add_argument("--neurons", type=int, default=3, help="most active neurons per layer")
    p.add_argument("--fidelity", action="store_true", help="also summarise the stored graphs")
    args = p.parse_args()
    root = data_root()
    spec = load_registry(registry_path())[args.model]
    bridge = load_bridge(spec)
    shape = model_shape(bridge)
    tok = bridge.tokenizer
    vocab = vocabulary_strings(tok, shape.d_vocab)
    special = set(tok.all_special_ids) | {shape.bos_id}
    pad = mask_id(spec, tok)
    docs = storage.read(root, DATASET_TOKENS, args.model, None, ["doc_index", "token_ids"])
    doc_ids = docs.sort("doc_index")["token_ids"].to_list()
    cfg = N2GConfig(
        max_augmentations=spec.n2g.max_augmentations,
        augmented_saliency=spec.n2g.augmented_saliency,
        normalize_tokens=spec.n2g.normalize_tokens,
    )
    print(
        f"{args.model}: {args.neurons} neurons per layer, augmenter {spec.n2g.augmenter}, "
        f"augmented_saliency {spec.n2g.augmented_saliency}, device {bridge.cfg.device}"
    )
    print(
        "layer  neurons  seqs   tokens  whole s  tok/s  bare tok/s  ratio | shared s  "
        "shared/whole  same graphs"
    )
    for layer in args.layers:
        stats = storage.read(root, NEURON_STATS, args.model, [layer], ["neuron", "max"])
        examples = storage.read(root, NEURON_EXAMPLES, args.model, [layer])
        neurons = choose_neurons(stats, args.neurons)
        inputs = neuron_inputs(stats, examples, doc_ids, neurons)
        augmenter = make_augmenter(spec.n2g.augmenter, bridge, vocab, special, pad)
        probe = RecordingProbe(
            bridge, layer, spec.hook, pad, spec.n2g.max_batch_tokens, share_prefixes=False
        )
        start = time.perf_counter()
        whole = N2G(probe, vocab, special, pad, augmenter, cfg).run(inputs)
        whole_s = time.perf_counter() - start
        padded = sum(int(b.numel()) for b in probe.batches)
        bare = bare_forward(bridge, probe.batches)
        ours = padded / probe.stats.seconds
        shared_probe = NeuronProbe(bridge, layer, spec.hook, pad, spec.n2g.max_batch_tokens)
        start = time.perf_counter()
        shared = N2G(shared_probe, vocab, special, pad, augmenter, cfg).run(inputs)
        shared_s = time.perf_counter() - start
        same = sum(summary(a) == summary(b) for a, b in zip(whole, shared, strict=True))
        print(
            f"{layer:5d}  {len(inputs):7d}  {probe.stats.sequences:5d}  {padded:7d}  "
            f"{whole_s:7.1f}  {ours:5.0f}  {padded / bare:10.0f}  {ours / (padded / bare):5.2f} | "
            f"{shared_s:8.1f}  {shared_s / whole_s:12.2f}  {same}/{len(whole)}"
            + ("" if shared_probe.shares_prefixes else "  (fell back to whole copies)")
        )
    print("(tokens include padding; both sides run the same padded batches)")
    if args.fidelity:
        fidelity_table(root, args.model)


if __name__ == "__main__":
    main()
