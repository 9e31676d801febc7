"""Co-activation similarity for a whole model's neurons: time and peak memory vs the bare matmul.

    .venv/bin/python bench/coactivation.py --neurons 46080 --positions 2048

Activations are synthetic but shaped like the real sample (low-rank shared structure plus noise,
a few constant neurons); what is measured is the blocked top-k computation of
`dd_assets.methods.coactivation`. The baseline is the unavoidable work in the same run: the same
block-by-block matmuls (z.T @ z) with nothing kept. Peak RSS is the process high-water mark after
the data is built, so the increase is what the computation adds.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from dd_assets.methods.coactivation import standardize, top_correlations


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurons", type=int, default=46080)
    ap.add_argument("--positions", type=int, default=2048)
    ap.add_argument("--block", type=int, default=2048)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, p = args.neurons, args.positions
    x = rng.standard_normal((p, 64), dtype=np.float32) @ rng.standard_normal(
        (64, n), dtype=np.float32
    )
    x += rng.standard_normal((p, n), dtype=np.float32)
    x[:, :: max(n // 20, 1)] = 0.0  # dead neurons
    base_rss = rss_mb()
    print(f"co-activation: {n} neurons x {p} positions, threads={torch.get_num_threads()}")
    start = time.perf_counter()
    z, _ = standardize(x)
    for lo in range(0, n, args.block):
        _ = z[:, lo : lo + args.block].T @ z
    bare = time.perf_counter() - start
    del z, _
    start = time.perf_counter()
    similar = top_correlations(x, 10, args.block)
    full = time.perf_counter() - start
    print(f"  bare blocked matmul   {bare:8.1f} s")
    print(f"  top-10 similar        {full:8.1f} s   ({n / full:.0f} neurons/s)")
    print(f"  ratio top-10 / matmul {full / bare:8.3f}")
    print(
        f"  peak RSS {rss_mb():.0f} MB (data built: {base_rss:.0f} MB; input {x.nbytes / 2**20:.0f} MB)"
    )
    print(f"  undefined (constant) neurons: {int((similar.index[:, 0] < 0).sum())}")


if __name__ == "__main__":
    main()
