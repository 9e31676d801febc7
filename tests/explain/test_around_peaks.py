"""`Excerpts.around_peaks`: excerpts cut to a few tokens around their peak, positions kept."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.explain.records import Excerpts


def test_each_excerpt_is_cut_around_its_own_peak_and_keeps_its_position():
    acts = np.zeros((3, 10), dtype=np.float32)
    acts[0, 5], acts[1, 0], acts[2, 9] = 1.0, 2.0, 3.0  # middle, first, last token
    ex = Excerpts(
        neuron=np.array([0, 0, 1]), explain=np.array([True, False, False]),
        kind=np.array(["top", "top", "random"]), rank=np.zeros(3, dtype=np.int64),
        doc_index=np.array([4, 5, 6]), start=np.array([1, 1, 20]),
        token_ids=np.arange(30).reshape(3, 10), activations=acts,
    )  # fmt: skip
    cut = ex.around_peaks(4)
    assert cut.width == 4
    np.testing.assert_array_equal(cut.token_ids, [[3, 4, 5, 6], [10, 11, 12, 13], [26, 27, 28, 29]])
    np.testing.assert_array_equal(cut.start, [1 + 3, 1 + 0, 20 + 6])
    assert cut.activations.max(axis=1).tolist() == [1.0, 2.0, 3.0]  # every peak kept
    np.testing.assert_array_equal(cut.doc_index, ex.doc_index)
    with pytest.raises(ValueError, match="width must be"):
        ex.around_peaks(11)
