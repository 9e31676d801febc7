"""Co-activation similarity for a whole model's neurons: time and peak memory vs the bare matmul.

    .venv/bin/python bench/coactivation.py --neurons 46080 --positions 2048
    .venv/bin/python bench/coactivation.py --neurons 0 --data-root /work/fresh3/data

Synthetic part: activations shaped like the real sample (low-rank shared structure plus noise, a
few constant neurons); what is measured is the blocked top-k computation of
`dd_assets.methods.coactivation`. The baseline is a fixed amount of work in the same run: every
row block against all columns (z.T @ z in full) with nothing kept. The method multiplies each pair
of blocks once (the matrix is symmetric), so its ratio to that baseline is below 1. Peak RSS is the
process high-water mark after the data is built, so the increase is what the computation adds.

Real part (`--data-root`): the asset's work on a stored `activation_sample` (read it, build the
[positions, neurons] matrix, rank), old (Python lists and the full row sweep, as before the
symmetric blocks) against new (polars Array and the method), in the same run; it also reports how
many of the 10 partners per neuron agree.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from dd_assets import storage
from dd_assets.assets._common import list_matrix
from dd_assets.methods.coactivation import Similar, standardize, top_correlations
from dd_assets.tables import ACTIVATION_SAMPLE


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.inference_mode()
def row_sweep(x: np.ndarray, k: int = 10, block: int = 2048) -> Similar:
    """The method before symmetric blocks (kept to compare): each row block against all columns."""
    n = x.shape[1]
    z, live = standardize(x)
    k_eff = min(k, max(n - 1, 0))
    index = np.full((n, k), -1, dtype=np.int64)
    corr = np.full((n, k), np.nan, dtype=np.float32)
    dead = torch.from_numpy(~live)
    for start in range(0, n, block):
        stop = min(start + block, n)
        c = z[:, start:stop].T @ z
        strength = c.abs()
        strength[:, dead] = -1.0
        rows = torch.arange(stop - start)
        strength[rows, rows + start] = -2.0
        _, idx = strength.topk(k_eff, dim=1)
        vals = c.gather(1, idx)
        ok = live[start:stop]
        index[start:stop, :k_eff] = np.where(ok[:, None], idx.numpy(), -1)
        corr[start:stop, :k_eff] = np.where(ok[:, None], vals.numpy(), np.nan)
    partner_dead = (index >= 0) & ~live[np.clip(index, 0, None)]
    index[partner_dead], corr[partner_dead] = -1, np.nan
    return Similar(index, corr)


def synthetic(n: int, p: int, block: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((p, 64), dtype=np.float32) @ rng.standard_normal(
        (64, n), dtype=np.float32
    )
    x += rng.standard_normal((p, n), dtype=np.float32)
    x[:, :: max(n // 20, 1)] = 0.0  # dead neurons
    base_rss = rss_mb()
    print(f"co-activation: {n} neurons x {p} positions, threads={torch.get_num_threads()}")
    start = time.perf_counter()
    z, _ = standardize(x)
    for lo in range(0, n, block):
        _ = z[:, lo : lo + block].T @ z
    bare = time.perf_counter() - start
    del z, _
    start = time.perf_counter()
    similar = top_correlations(x, 10, block)
    full = time.perf_counter() - start
    print(f"  bare blocked matmul (full z.T @ z) {bare:8.1f} s")
    print(f"  top-10 similar (symmetric blocks)  {full:8.1f} s   ({n / full:.0f} neurons/s)")
    print(f"  ratio top-10 / full matmul         {full / bare:8.3f}")
    print(
        f"  peak RSS {rss_mb():.0f} MB (data built: {base_rss:.0f} MB; input {x.nbytes / 2**20:.0f} MB)"
    )
    print(f"  undefined (constant) neurons: {int((similar.index[:, 0] < 0).sum())}")


def real(root: str, model: str) -> None:
    sample = storage.read(root, ACTIVATION_SAMPLE, model).sort("layer", "neuron")
    print(f"asset work on {root} ({model}): {sample.height} neurons")
    column = sample["activations"]
    start = time.perf_counter()
    x_old = np.asarray(column.to_list(), dtype=np.float32).T
    t_lists = time.perf_counter() - start
    old = row_sweep(x_old)
    t_old = time.perf_counter() - start
    del x_old
    start = time.perf_counter()
    x = list_matrix(column).T
    t_array = time.perf_counter() - start
    new = top_correlations(x)
    t_new = time.perf_counter() - start
    print(f"  matrix: Python lists {t_lists:6.2f} s, polars Array {t_array:6.3f} s")
    print(f"  old (lists + row sweep)       {t_old:8.1f} s")
    print(f"  new (Array + symmetric blocks) {t_new:7.1f} s   ratio new / old {t_new / t_old:.3f}")
    same = (old.index == new.index).mean()
    both = ~np.isnan(old.correlation) & ~np.isnan(new.correlation)
    diff = np.abs(old.correlation - new.correlation)[both].max(initial=0.0)
    undefined = (np.isnan(old.correlation) == np.isnan(new.correlation)).all()
    print(f"  same partner at same rank: {same:.6f}; max |r| difference {diff:.2e}")
    print(f"  undefined entries identical: {bool(undefined)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurons", type=int, default=46080, help="0: skip the synthetic part")
    ap.add_argument("--positions", type=int, default=2048)
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--data-root", help="also time the asset's work on this root's sample")
    ap.add_argument("--model", default="smollm2-135m")
    args = ap.parse_args()
    if args.neurons:
        synthetic(args.neurons, args.positions, args.block)
    if args.data_root:
        real(args.data_root, args.model)


if __name__ == "__main__":
    main()
