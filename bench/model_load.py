"""Loading the packaged SmolLM2 GGUF: transformers' plain GGUF load vs ours, cold and cached.

    .venv/bin/python bench/model_load.py --rounds 2

Each load runs in a fresh Python process with torch and transformers already imported, timing
only the load itself (what every pipeline, API inference and test process pays):

  auto       baseline: AutoTokenizer + AutoModelForCausalLM with gguf_file (the file parsed 3x)
  convert    dd_assets.gguf_loading.convert_gguf (config read once, name map built once)
  cached     dd_assets.model_cache.load of an entry written by `convert` in this run

Rounds interleave the three so machine noise hits them alike; medians and ratios are printed.
Every variant prints a digest of its weights and tokenizer, which must agree.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import hashlib, sys, time
import torch, transformers  # imported before the clock starts
from pathlib import Path
from dd_assets import model_cache
from dd_assets.gguf_loading import convert_gguf
from dd_assets.models import _dtype, packaged_gguf_path
from dd_assets.registry import load_registry

variant, cache, model = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
spec = load_registry("models.yaml")[model]
path, dtype = packaged_gguf_path(spec.loader), _dtype(spec.dtype)
entry = model_cache.entry_path(cache, spec.loader.package, path, dtype)
start = time.perf_counter()
if variant == "auto":
    kw = {"gguf_file": path.name}
    tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), **kw)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=dtype, **kw)
elif variant == "convert":
    hf, tok = convert_gguf(path, dtype)
else:
    hf, tok = model_cache.load(entry, dtype)
seconds = time.perf_counter() - start
if variant == "convert" and not entry.exists():
    model_cache.store(entry, hf, tok)
h = hashlib.sha256()
for name, tensor in sorted(hf.state_dict().items()):
    h.update(name.encode()); h.update(tensor.contiguous().numpy().tobytes())
h.update(tok.backend_tokenizer.to_str().encode())
print(f"RESULT {seconds:.3f} {h.hexdigest()[:16]}")
"""

VARIANTS = ["auto", "convert", "cached"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    digests: dict[str, set[str]] = {v: set() for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="dd-model-cache-") as cache:
        for r in range(args.rounds):
            for variant in VARIANTS:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, variant, cache, args.model],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                seconds, digest = out.split("RESULT ")[-1].split()
                times[variant].append(float(seconds))
                digests[variant].add(digest)
                print(f"round {r + 1} {variant:8s} {float(seconds):6.1f} s  weights {digest}")
    base = statistics.median(times["auto"])
    print(f"\n{args.model}: median load time over {args.rounds} round(s)")
    for variant in VARIANTS:
        t = statistics.median(times[variant])
        print(f"  {variant:8s} {t:6.1f} s   ratio vs auto {base / t:5.1f}x")
    same = len(set().union(*digests.values())) == 1
    print(f"  identical weights and tokenizer in every variant: {same}")
    if not same:
        raise SystemExit("the variants loaded different weights")


if __name__ == "__main__":
    main()
