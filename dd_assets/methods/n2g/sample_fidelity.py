"""Fidelity of an N2G sample of neurons: mean held-out F1 with a confidence interval.

Per layer and per sample ("top", "random"; never pooled), next to the token-lookup baseline on the
same neurons. The interval is a Student t-interval of the mean over neurons: with the random
sample it estimates how well N2G explains a typical live neuron of the layer.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import stats

METHOD = "mean over neurons, 95% Student t-interval"


def mean_interval(values: np.ndarray, level: float = 0.95) -> tuple[float | None, ...]:
    """(mean, low, high); the bounds are None with fewer than two values, all None with none.

    >>> [round(v, 3) for v in mean_interval(np.array([0.2, 0.4, 0.6]))]
    [0.4, -0.097, 0.897]
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return None, None, None
    mean = float(v.mean())
    if v.size < 2:
        return mean, None, None
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return mean, mean - float(half), mean + float(half)


def fidelity_summary(graphs: pl.DataFrame) -> list[dict]:
    """Rows per (layer, sample) and per sample for the whole model (layer None).

    `graphs` has layer, sample, f1, baseline_f1; neurons with an undefined F1 (no firing test
    token) are left out of both means and counted nowhere.
    """
    defined = graphs.filter(pl.col("f1").is_not_null() & pl.col("baseline_f1").is_not_null())
    rows = []
    groups = [((layer, sample), g) for (layer, sample), g in defined.group_by("layer", "sample")]
    groups += [((None, sample), g) for (sample,), g in defined.group_by("sample")]
    for (layer, sample), g in groups:
        f1 = mean_interval(g["f1"].to_numpy())
        base = mean_interval(g["baseline_f1"].to_numpy())
        rows.append(
            {
                "layer": layer,
                "sample": sample,
                "neurons": g.height,
                "f1_mean": f1[0],
                "f1_ci_low": f1[1],
                "f1_ci_high": f1[2],
                "baseline_f1_mean": base[0],
                "baseline_f1_ci_low": base[1],
                "baseline_f1_ci_high": base[2],
                "method": METHOD,
            }
        )
    return rows
