"""N2G pruning: which prefix is accepted, and how the kept prompt is scaled."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.n2g.augment import NoAugmenter
from dd_assets.methods.n2g.engine import N2G, Document, NeuronInput

PIVOT_TOKEN, RIVAL_TOKEN = 9, 8


def fake_acts(pivot_act: float):
    """A neuron that fires `pivot_act` on token 9, 2.0 on token 8, 0.1 elsewhere (BOS 0)."""

    def acts(seqs, _neurons):
        out = []
        for seq in seqs:
            a = np.full(len(seq), 0.1, dtype=np.float32)
            a[0] = 0.0
            a[np.asarray(seq) == RIVAL_TOKEN] = 2.0
            a[np.asarray(seq) == PIVOT_TOKEN] = pivot_act
            out.append(a)
        return out

    return acts


def prune(ids: list[int], pivot_act: float, dataset_act: float = 5.0):
    """Run only the pruning stage on one document whose pivot (token 9) fired `dataset_act`."""
    doc_acts = np.full(len(ids), 0.1, dtype=np.float32)
    doc_acts[0] = 0.0
    doc_acts[ids.index(PIVOT_TOKEN)] = dataset_act
    doc = Document(np.asarray(ids, dtype=np.int64), doc_acts, 0)
    engine = N2G(fake_acts(pivot_act), [str(i) for i in range(20)], {0}, 1, NoAugmenter())
    return engine._prune([NeuronInput(0, dataset_act, [doc])], [([0], [])])


def test_accepts_the_shortest_prefix_keeping_the_pivot_the_argmax():
    ids = [0, 1, 2, 3, 4, 5, 6, 7, 11, PIVOT_TOKEN, 10]
    (p,) = prune(ids, pivot_act=4.0)
    # First candidate: 5 tokens ending at the pivot, after BOS; kept at 4.0 >= 50% of 5.0.
    assert p.ids[: p.pivot + 1].tolist() == [0, 5, 6, 7, 11, PIVOT_TOKEN]
    assert p.scale == pytest.approx(5.0 / 4.0)


def test_fallback_is_scaled_by_the_truncated_prompts_maximum():
    """No prefix keeps the pivot the argmax (token 8 beats it): the whole prefix is kept, and the
    prompt is scaled by its own maximum (2.0), not the pivot's 0.05, which would put token 8 at
    40x the neuron's maximum."""
    ids = [0, 1, 2, 3, 4, 5, 6, 7, RIVAL_TOKEN, PIVOT_TOKEN, 10]
    (p,) = prune(ids, pivot_act=0.05)
    assert p.ids[: p.pivot + 1].tolist() == ids[:10]
    assert p.scale == pytest.approx(5.0 / 2.0)
    normalised_rival = 2.0 * p.scale / 5.0
    assert normalised_rival == pytest.approx(1.0)
