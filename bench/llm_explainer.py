"""Seconds per neuron of the LLM explainer against a real llama-server, per simulator mode.

    .venv/bin/python bench/llm_explainer.py [--model smollm2-135m] [--layer 5] [--neurons 3]
                                            [--width 16]

Reads one layer's excerpts from DEEPDECIPHER_DATA_ROOT (read only; nothing is written), starts
llama.cpp's server on the packaged SmolLM2-135M-Instruct GGUF (loopback, free port, stopped at
the end) and explains and scores the same sampled neurons once per simulator mode the server
offers: the chat simulator with token log-probabilities (`logprobs`) and without them (`sampled`,
top_logprobs=0). All-at-once needs prompt log-probabilities (``echo``); the probe's answer is
printed. Each mode starts with an empty reply cache and one request in flight. The baseline in
the same run is the offline explainer on the whole layer, per neuron.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import free_port

from dd_assets import storage
from dd_assets.assets.explanations import layer_excerpts, llm_sample
from dd_assets.methods.explain.client import Budget, ChatClient, ClientConfig, ReplyCache
from dd_assets.methods.explain.llm import explain_neurons
from dd_assets.methods.explain.offline import offline_explanations
from dd_assets.settings import data_root
from dd_assets.tables import MODEL_METADATA
from deepdecipher.llama_server import LlamaServer, smollm2_gguf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--layer", type=int, default=5)
    p.add_argument("--neurons", type=int, default=3)
    p.add_argument("--width", type=int, default=0, help="cut excerpts to this many tokens")
    args = p.parse_args()
    root = data_root()
    meta = storage.read(root, MODEL_METADATA, args.model)
    if not meta.height:
        raise SystemExit(f"{args.model} is not materialized under {root}")
    d_mlp, layer = int(meta["layer_size"][0]), args.layer
    excerpts, vocab = layer_excerpts(root, args.model, layer, d_mlp)
    if args.width:
        excerpts = excerpts.around_peaks(args.width)
    t0 = time.perf_counter()
    offline_explanations(excerpts, vocab, range(d_mlp))
    offline_s = (time.perf_counter() - t0) / d_mlp
    neurons = llm_sample(args.model, layer, d_mlp, args.neurons)
    width = excerpts.width
    mine = np.isin(excerpts.neuron, neurons)
    print(f"{args.model} layer {layer}: neurons {neurons}, {width}-token excerpts, "
          f"{int((mine & excerpts.explain).sum())} explain and {int((mine & ~excerpts.explain).sum())} "
          f"score excerpts for them; {os.cpu_count()} CPUs")  # fmt: skip
    with LlamaServer(smollm2_gguf(), free_port(), alias="smollm2-135m") as server:
        base = dict(base_url=server.base_url, explainer_model="smollm2-135m",
                    simulator_model="smollm2-135m", concurrency=1, timeout_s=600.0)  # fmt: skip
        echo = ChatClient(ClientConfig(**base), api_key="no-key").echoes_prompt_logprobs(
            "smollm2-135m"
        )
        print(f"server up; echoes prompt log-probabilities (all-at-once): {echo}")
        per_neuron = {}
        for mode, extra in (("logprobs", {}), ("sampled", {"top_logprobs": 0})):
            client = ChatClient(ClientConfig(**base, **extra), api_key="no-key")
            t0 = time.perf_counter()
            results = explain_neurons(
                client, ReplyCache(None), Budget(None), args.model, layer, neurons, excerpts,
                vocab,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            per_neuron[mode] = seconds / len(neurons)
            print(f"{mode}: {per_neuron[mode]:.1f} s per neuron ({client.requests} requests, "
                  f"{seconds:.0f} s for {len(neurons)})")  # fmt: skip
            for r in results:
                score = "-" if r.score is None else f"{r.score:.3f}"
                print(f"  neuron {r.neuron} [{r.simulator_mode or r.status}] {score} "
                      f"{r.score_status}: {r.explanation!r}")  # fmt: skip
    print(f"offline explainer (baseline): {offline_s * 1e3:.2f} ms per neuron; "
          f"LLM logprobs / offline = {per_neuron['logprobs'] / offline_s:,.0f}x, "
          f"sampled / logprobs = {per_neuron['sampled'] / per_neuron['logprobs']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
