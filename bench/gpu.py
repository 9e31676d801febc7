"""The GPU steps on an accelerator: scan and Neuron2Graph for two full layers vs a bare forward pass.

    deepdecipher materialize                                   # the tables N2G reads
    .venv/bin/python bench/gpu.py                              # CUDA, layers 0 and 1, every neuron
    .venv/bin/python bench/gpu.py --device cpu --smoke         # the same code path, small, on CPU

Scan: the activation scan of `--layers` over `--docs` documents, interleaved batch by batch with a
bare forward pass of the same batches (tokens/s of both and their ratio). N2G: every live neuron
of each layer (`--neurons` caps it), from the Neuroscope examples in the data root, with the
batches it sent replayed through a bare forward pass (model tokens/s, ratio, neurons/s).
`--device cuda` without a CUDA device exits with status 2 and says so; nothing falls back silently.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from n2g import RecordingProbe, bare_forward  # sibling bench scripts
from scan import documents

from dd_assets import storage
from dd_assets.assets.n2g import choose_neurons, mask_id, neuron_inputs
from dd_assets.methods.activations import LayerActivations
from dd_assets.methods.n2g.augment import make_augmenter
from dd_assets.methods.n2g.engine import N2G, N2GConfig
from dd_assets.methods.neuroscope import ActivationScan, ScanConfig
from dd_assets.models import load_bridge, model_shape, vocabulary_strings
from dd_assets.registry import load_registry
from dd_assets.settings import data_root, registry_path
from dd_assets.tables import DATASET_TOKENS, NEURON_EXAMPLES, NEURON_STATS


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.inference_mode()
def scan(bridge, spec, layers: list[int], docs: int, ctx: int, batch: int, device: str) -> None:
    tokens = documents(bridge, docs, ctx).to(device)
    batches = list(tokens.split(batch))
    reader = LayerActivations(bridge, layers, spec.hook)
    state = ActivationScan(
        layers,
        model_shape(bridge).d_mlp,
        len(tokens),
        ScanConfig(top_k=spec.top_k),
        tokens.shape[1],
    )
    model = getattr(bridge, "original_model", bridge)
    model(batches[0])  # warm-up (kernels, allocator)
    seconds = {"bare forward": 0.0, "scan": 0.0}
    for i, b in enumerate(batches):  # interleaved, so drift hits both alike
        for name in seconds:
            sync(device)
            start = time.perf_counter()
            if name == "scan":
                state.update(reader(b), torch.arange(i * batch, i * batch + len(b)))
            else:
                model(b)
            sync(device)
            seconds[name] += time.perf_counter() - start
    state.result()
    n = tokens.numel()
    rates = {k: n / v for k, v in seconds.items()}
    print(f"scan of layers {layers}: {n} tokens")
    for name, rate in rates.items():
        print(f"  {name:<13} {rate:10.0f} tokens/s")
    print(f"  ratio scan / bare forward {rates['scan'] / rates['bare forward']:.3f}")


def n2g(bridge, spec, model: str, layers: list[int], neurons: int | None, device: str) -> None:
    root = data_root()
    docs = storage.read(root, DATASET_TOKENS, model, None, ["doc_index", "token_ids"])
    if docs.height == 0:
        sys.exit(
            f"no dataset_tokens for {model} under {root}: run `deepdecipher materialize` first"
        )
    doc_ids = docs.sort("doc_index")["token_ids"].to_list()
    shape = model_shape(bridge)
    tok = bridge.tokenizer
    vocab = vocabulary_strings(tok, shape.d_vocab)
    special = set(tok.all_special_ids) | {shape.bos_id}
    pad = mask_id(spec, tok)
    cfg = N2GConfig(
        max_augmentations=spec.n2g.max_augmentations,
        augmented_saliency=spec.n2g.augmented_saliency,
        normalize_tokens=spec.n2g.normalize_tokens,
    )
    print("N2G   layer  neurons   tokens  N2G s  N2G tok/s  bare tok/s  ratio  neurons/s")
    for layer in layers:
        stats = storage.read(root, NEURON_STATS, model, [layer], ["neuron", "max"])
        examples = storage.read(root, NEURON_EXAMPLES, model, [layer])
        inputs = neuron_inputs(stats, examples, doc_ids, choose_neurons(stats, neurons))
        probe = RecordingProbe(bridge, layer, spec.hook, pad, spec.n2g.max_batch_tokens)
        augmenter = make_augmenter(spec.n2g.augmenter, bridge, vocab, special, pad)
        sync(device)
        start = time.perf_counter()
        N2G(probe, vocab, special, pad, augmenter, cfg).run(inputs)
        sync(device)
        total = time.perf_counter() - start
        padded = sum(int(b.numel()) for b in probe.batches)
        bare = bare_forward(bridge, probe.batches)
        sync(device)
        ours = padded / max(probe.stats.seconds, 1e-9)
        print(
            f"      {layer:5d}  {len(inputs):7d}  {padded:7d}  {total:5.1f}  {ours:9.0f}  "
            f"{padded / bare:10.0f}  {ours / (padded / bare):5.2f}  {len(inputs) / total:9.2f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--layers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--docs", type=int, default=2048, help="documents scanned")
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--neurons", type=int, default=None, help="cap per layer (default: all)")
    p.add_argument("--smoke", action="store_true", help="16 documents, 4 neurons per layer")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"bench/gpu.py: --device {args.device} but no CUDA device is visible "
              "(use --device cpu --smoke to exercise the code path)", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    if args.smoke:
        args.docs, args.batch, args.neurons = 16, 8, 4
    spec = load_registry(registry_path())[args.model]
    bridge = load_bridge(spec, device=args.device)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    print(f"{args.model} on {name}, layers {args.layers}, batch {args.batch}")
    scan(
        bridge,
        spec,
        args.layers,
        args.docs,
        min(args.ctx, spec.context_length),
        args.batch,
        args.device,
    )
    n2g(bridge, spec, args.model, args.layers, args.neurons, args.device)


if __name__ == "__main__":
    main()
