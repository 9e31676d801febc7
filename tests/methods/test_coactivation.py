"""Blocked co-activation similarity against a brute-force correlation matrix."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.coactivation import top_correlations


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.corrcoef(x.astype(np.float64), rowvar=False)
    np.fill_diagonal(c, 0.0)
    order = np.argsort(-np.abs(c), axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(c, order, axis=1)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 8))
    mix = rng.standard_normal((8, 57))  # correlated columns, some strongly negative
    return (base @ mix + 0.3 * rng.standard_normal((300, 57))).astype(np.float32)


@pytest.mark.parametrize("block", [1, 7, 64])
def test_blocked_equals_brute_force(x, block):
    got = top_correlations(x, k=10, block=block)
    order, values = brute_force(x, 10)
    np.testing.assert_allclose(got.correlation, values, atol=2e-6)
    # Same partners, except where two partners tie to within float error.
    same = got.index == order
    assert same.mean() > 0.99
    assert (got.correlation < 0).any() and (got.correlation > 0).any()


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
