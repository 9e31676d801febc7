"""Activation-scan throughput vs a bare forward pass over the same tokens, and peak memory.

    .venv/bin/python bench/scan.py                  # SmolLM2-135M, 96 documents of 128 tokens
    .venv/bin/python bench/scan.py --docs 48 --rss  # also peak RSS at two dataset sizes

Baselines, same tokens, same batches, same process, interleaved batch by batch:
  forward        the bridge's full forward pass (what "run the model" costs, unembedding included)
  forward-stop   the same forward stopped after the last block (no statistics kept)
  scan           our scan: forward-stop + top-k, moments and histogram for every neuron
Ratios above 1 mean the scan is faster than the baseline. `--rss` reruns the scan in child
processes at two dataset sizes and prints their peak resident memory (flat = streaming works).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.documents import pack_documents
from dd_assets.methods.neuroscope import ActivationScan, ScanConfig
from dd_assets.models import load_bridge, model_shape
from dd_assets.registry import load_registry
from dd_assets.text_sources import stdlib_pieces


def documents(bridge, n_docs: int, ctx: int) -> torch.Tensor:
    tok = bridge.tokenizer
    docs = pack_documents(
        stdlib_pieces(),
        lambda t: tok.encode(t, add_special_tokens=False),
        model_shape(bridge).bos_id,
        ctx,
        n_docs,
    )
    return torch.tensor([d.token_ids for d in docs])


def run(args) -> dict:
    spec = load_registry(args.registry)[args.model]
    bridge = load_bridge(spec)
    shape = model_shape(bridge)
    tokens = documents(bridge, args.docs, args.ctx)
    batches = list(tokens.split(args.batch))
    layers = list(range(shape.n_layers))
    reader = LayerActivations(bridge, layers, spec.hook)
    n_tokens = tokens.numel()
    cfg = ScanConfig(top_k=spec.top_k)
    state = ActivationScan(layers, shape.d_mlp, len(tokens), cfg, tokens.shape[1])
    modes = {
        "forward": lambda b, _start: bridge(b),
        "forward-stop": lambda b, _start: reader(b),
        "scan": lambda b, start: state.update(reader(b), torch.arange(start, start + len(b))),
    }
    if args.scan_only:
        modes = {"scan": modes["scan"]}
    seconds = dict.fromkeys(modes, 0.0)
    with torch.inference_mode():
        bridge(batches[0])  # warm-up
        # Interleave the modes batch by batch, so drift on a shared machine hits all of them alike.
        for i, batch in enumerate(batches):
            for name, fn in modes.items():
                start = time.perf_counter()
                fn(batch, i * args.batch)
                seconds[name] += time.perf_counter() - start
        state.result()
    results = seconds
    return {
        "tokens": n_tokens,
        "tokens_per_s": {k: n_tokens / v for k, v in results.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--registry", default="models.yaml")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--docs", type=int, default=96)
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rss", action="store_true", help="peak RSS at --docs and 4 x --docs")
    p.add_argument("--scan-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    out = run(args)
    if args.json:
        print(json.dumps(out))
        return
    tps = out["tokens_per_s"]
    print(f"{args.model}: {out['tokens']} tokens, threads={torch.get_num_threads()}")
    for name, value in tps.items():
        print(f"  {name:<13} {value:8.1f} tokens/s")
    print(f"  ratio scan / forward      {tps['scan'] / tps['forward']:.3f}")
    print(f"  ratio scan / forward-stop {tps['scan'] / tps['forward-stop']:.3f}")
    if args.rss:
        for docs in (args.docs, 4 * args.docs):
            cmd = [sys.executable, __file__, "--registry", args.registry, "--model", args.model,
                   "--docs", str(docs), "--ctx", str(args.ctx), "--batch", str(args.batch),
                   "--scan-only", "--json"]  # fmt: skip
            child = json.loads(subprocess.run(cmd, capture_output=True, text=True).stdout)
            print(f"  peak RSS at {child['tokens']:>7} tokens: {child['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
