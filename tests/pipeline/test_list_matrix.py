"""`list_matrix`: list columns to 2-D arrays without Python lists, as the old `to_list()` did."""

import numpy as np
import polars as pl
import pytest

from dd_assets.assets._common import list_matrix


def test_equals_the_python_list_path():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((37, 11)).astype(np.float32)
    column = pl.Series("activations", rows.tolist(), dtype=pl.List(pl.Float32))
    got = list_matrix(column)
    assert got.dtype == np.float32 and got.shape == (37, 11)
    np.testing.assert_array_equal(got, np.asarray(column.to_list(), dtype=np.float32))


def test_empty_column():
    assert list_matrix(pl.Series("a", [], dtype=pl.List(pl.Float32))).shape == (0, 0)


@pytest.mark.parametrize(
    "values",
    [[[1.0, 2.0], [3.0]], [[1.0, 2.0], None], [[1.0, None], [2.0, 3.0]]],
    ids=["ragged", "null list", "null value"],
)
def test_ragged_or_null_lists_raise(values):
    with pytest.raises((ValueError, pl.exceptions.ComputeError)):
        list_matrix(pl.Series("a", values, dtype=pl.List(pl.Float32)))
