"""One writer process of the parallel-commit test: `rounds` overwrites of one layer of a table."""

from __future__ import annotations

import sys
import time

import polars as pl

from dd_assets import storage
from dd_assets.tables import NEURON_STATS


def frame(layer: int, value: float, n: int = 8) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": ["m"] * n, "layer": [layer] * n, "neuron": list(range(n)), "count": [10] * n,
            "max": [value] * n, "min": [0.0] * n, "mean": [0.5] * n, "std": [0.1] * n,
            "frac_positive": [0.5] * n, "hist_edges": [[0.0, value]] * n, "hist_counts": [[10]] * n,
        },
        schema=NEURON_STATS.schema,
    )  # fmt: skip


if __name__ == "__main__":
    root, layer, rounds, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    time.sleep(max(0.0, float(start_at) - time.time()))  # all writers create the table at once
    for r in range(rounds):
        storage.write_partition(root, NEURON_STATS, frame(layer, float(r + 1)), "m", [layer])
