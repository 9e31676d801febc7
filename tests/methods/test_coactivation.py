"""Blocked co-activation similarity against a brute-force correlation matrix.

The blocked method multiplies each pair of column blocks once and merges every row's candidates
into a running top k, so the checks below cover what a wrong merge would break: block sizes that
do not divide the number of neurons or exceed it, k above the number of live partners, dead
columns inside blocks, exact ties, and partners from blocks before and after a row's own.
"""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.coactivation import Similar, top_correlations


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.corrcoef(x.astype(np.float64), rowvar=False)
    np.fill_diagonal(c, 0.0)
    order = np.argsort(-np.abs(c), axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(c, order, axis=1)


def assert_top_k(got: Similar, x: np.ndarray, k: int, atol: float = 2e-6) -> None:
    """`got` is a top k of the exact correlations: right partners (up to exact or float ties),
    right signed values, strongest first, no self, no constant column, no partner twice."""
    n = x.shape[1]
    live = x.std(axis=0) > 0
    centred = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = centred / np.linalg.norm(centred, axis=0)
    c = z.T @ z  # exact correlations, in float64; nan for constant columns
    assert got.index.shape == got.correlation.shape == (n, k)
    for row in range(n):
        idx, val = got.index[row], got.correlation[row]
        if not live[row]:
            assert (idx == -1).all() and np.isnan(val).all()
            continue
        others = np.flatnonzero(live & (np.arange(n) != row))
        m = min(k, len(others))
        assert (idx[m:] == -1).all() and np.isnan(val[m:]).all()
        idx, val = idx[:m], val[:m]
        assert len(set(idx.tolist())) == m and set(idx.tolist()) <= set(others.tolist())
        np.testing.assert_allclose(val, c[row, idx], atol=atol)
        assert (np.diff(np.abs(val)) <= atol).all()  # strongest first
        strongest = np.sort(np.abs(c[row, others]))[::-1][:m]
        np.testing.assert_allclose(np.abs(val), strongest, atol=atol)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 8))
    mix = rng.standard_normal((8, 57))  # correlated columns, some strongly negative
    return (base @ mix + 0.3 * rng.standard_normal((300, 57))).astype(np.float32)


@pytest.mark.parametrize("block", [1, 7, 19, 56, 57, 64, 2048])
def test_blocked_equals_brute_force(x, block):
    got = top_correlations(x, k=10, block=block)
    order, values = brute_force(x, 10)
    np.testing.assert_allclose(got.correlation, values, atol=2e-6)
    assert_top_k(got, x, 10)
    # Same partners in the same order, except where two partners tie to within float error.
    same = got.index == order
    assert same.mean() > 0.99
    assert (got.correlation < 0).any() and (got.correlation > 0).any()


@pytest.mark.parametrize("k", [1, 3, 56, 80])
@pytest.mark.parametrize("block", [5, 16, 100])
def test_any_k_with_dead_columns_inside_blocks(x, k, block):
    y = x.copy()
    y[:, [0, 6, 17, 33, 56]] = 0.5  # constant: first and last column, several blocks
    got = top_correlations(y, k=k, block=block)
    assert_top_k(got, y, k)
    assert not np.isin(got.index, [0, 6, 17, 33, 56]).any()


@pytest.mark.parametrize("block", [1, 4, 9, 64])
def test_exact_ties_are_kept_once_each(x, block):
    y = x[:, :30].copy()
    y[:, [11, 19, 27]] = y[:, [3]]  # exact copies of column 3, in later blocks
    y[:, 8] = -y[:, 3]  # and an exact mirror: correlation -1
    got = top_correlations(y, k=3, block=block)
    assert_top_k(got, y, 3)
    # Four partners at |r| = 1 compete for column 3's three places: any three, each once.
    assert set(got.index[3]) < {8, 11, 19, 27}
    np.testing.assert_allclose(np.abs(got.correlation[3]), 1.0, atol=1e-6)
    # A copy's list: the other copies and the mirror, never itself.
    assert set(got.index[19]) < {3, 8, 11, 27}


def test_constant_neurons_are_undefined_and_never_partners(x):
    y = x.copy()
    y[:, 5] = 1.25
    got = top_correlations(y, k=10, block=16)
    assert (got.index[5] == -1).all() and np.isnan(got.correlation[5]).all()
    assert not (got.index == 5).any()


def test_fewer_live_partners_than_k():
    rng = np.random.default_rng(1)
    y = np.zeros((50, 4), dtype=np.float32)
    y[:, :3] = rng.standard_normal((50, 3))
    got = top_correlations(y, k=10)
    assert ((got.index[:3] >= 0).sum(axis=1) == 2).all()
    assert (got.index[3] == -1).all()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_degenerate_sizes(n):
    y = np.random.default_rng(2).standard_normal((20, n)).astype(np.float32)
    got = top_correlations(y, k=4, block=1)
    assert_top_k(got, y, 4)
