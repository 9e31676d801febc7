"""The streaming scan against brute-force computations on small random tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dd_assets.methods.neuroscope import (
    ActivationScan,
    ScanConfig,
    band_label,
    gather_activations,
    scan,
)

DOCS, POS, D_MLP, LAYERS = 37, 9, 11, [0, 2]


@pytest.fixture(scope="module")
def acts() -> torch.Tensor:
    """Fake activations [layer, doc, pos, d_mlp], heavy-tailed like real neurons."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(len(LAYERS), DOCS, POS, D_MLP, generator=g) ** 3


def reader(acts: torch.Tensor):
    """A stand-in for LayerActivations: 'tokens' are document ids."""

    def read(tokens: torch.Tensor) -> list[torch.Tensor]:
        docs = tokens[:, 0]
        return [acts[i, docs] for i in range(len(LAYERS))]

    return read


def run_scan(acts, batch_size=5, **cfg):
    tokens = torch.arange(DOCS)[:, None].expand(DOCS, POS)
    return scan(reader(acts), tokens, LAYERS, D_MLP, ScanConfig(**cfg), batch_size)


@pytest.mark.parametrize("batch_size", [1, 4, 16, DOCS])
def test_top_k_equals_brute_force(acts, batch_size):
    k = 6
    result = run_scan(acts, batch_size, top_k=k)
    doc_max = acts[:, :, 1:, :].amax(dim=2)  # [layer, doc, d_mlp], BOS excluded
    expected_values, expected_docs = doc_max.topk(k, dim=1)
    np.testing.assert_allclose(result.top_values, expected_values.permute(0, 2, 1).numpy())
    np.testing.assert_array_equal(result.top_docs, expected_docs.permute(0, 2, 1).numpy())


@pytest.mark.parametrize("batch_size", [1, 5, DOCS])
def test_bottom_k_equals_brute_force(acts, batch_size):
    k = 6
    result = run_scan(acts, batch_size, top_k=k)
    doc_min = acts[:, :, 1:, :].amin(dim=2)  # [layer, doc, d_mlp], BOS excluded
    expected_values, expected_docs = doc_min.topk(k, dim=1, largest=False)
    np.testing.assert_allclose(result.bottom_values, expected_values.permute(0, 2, 1).numpy())
    np.testing.assert_array_equal(result.bottom_docs, expected_docs.permute(0, 2, 1).numpy())


@pytest.mark.parametrize("batch_size", [1, 4, DOCS])
def test_kept_activations_are_the_documents_own(acts, batch_size):
    """The per-token activations carried in the state are exactly the chosen documents' (BOS too)."""
    result = run_scan(acts, batch_size, top_k=5)
    for i in range(len(LAYERS)):
        for n in range(D_MLP):
            for kept, docs in (
                (result.top_acts, result.top_docs),
                (result.bottom_acts, result.bottom_docs),
            ):
                for r, doc in enumerate(docs[i, n]):
                    np.testing.assert_array_equal(kept[i, n, r], acts[i, doc, :, n].numpy())


def test_activation_sample_is_whole_seeded_windows(acts):
    cfg = dict(sample_windows=6, sample_window_len=4)
    result = run_scan(acts, 5, **cfg)
    again = run_scan(acts, 3, **cfg)
    np.testing.assert_array_equal(result.window_docs, again.window_docs)
    np.testing.assert_array_equal(result.window_starts, again.window_starts)
    assert len(set(result.window_docs.tolist())) == 6 and result.window_len == 4
    assert (result.window_starts >= 1).all() and (result.window_starts + 4 <= POS).all()
    for i in range(len(LAYERS)):
        expected = torch.cat(
            [
                acts[i, d, s : s + 4]
                for d, s in zip(result.window_docs, result.window_starts, strict=True)
            ]
        )
        np.testing.assert_array_equal(result.sample_acts[i], expected.numpy())
    assert result.sample_acts.shape == (len(LAYERS), 24, D_MLP)


def test_bos_position_never_ranks(acts):
    spiked = acts.clone()
    spiked[:, 3, 0, :] = 1e6  # a huge activation at BOS of document 3
    spiked[:, 4, 0, :] = -1e6
    result = run_scan(spiked, top_k=3)
    assert result.top_values.max() < 1e5
    assert result.bottom_values.min() > -1e5


def test_statistics_equal_numpy(acts):
    result = run_scan(acts, batch_size=7)
    x = acts[:, :, 1:, :].reshape(len(LAYERS), -1, D_MLP).double().numpy()
    np.testing.assert_allclose(result.mean, x.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.std, x.std(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.max, x.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(result.min, x.min(axis=1), rtol=1e-6)
    np.testing.assert_allclose(result.frac_positive, (x > 0).mean(axis=1))
    assert (result.count == DOCS * (POS - 1)).all()


def test_histogram_counts_sampled_positions(acts):
    result = run_scan(acts, hist_stride=1, hist_bins=10)
    assert result.hist_counts.shape == (len(LAYERS), D_MLP, 10)
    assert (result.hist_counts.sum(axis=2) == DOCS * (POS - 1)).all()
    np.testing.assert_allclose(result.hist_edges[..., 0], result.min, rtol=1e-6)
    np.testing.assert_allclose(result.hist_edges[..., -1], result.max, rtol=1e-6)
    assert (np.diff(result.hist_edges, axis=-1) >= 0).all()
    # Bins are whole runs of fine bins, so counts match numpy's on the returned edges (up to
    # values within float rounding of an edge).
    for layer, neuron in [(0, 0), (1, 5), (0, 10)]:
        x = acts[layer, :, 1:, neuron].reshape(-1).numpy()
        exact, _ = np.histogram(x, bins=result.hist_edges[layer, neuron])
        assert np.abs(exact - result.hist_counts[layer, neuron]).sum() <= 0.01 * x.size


def test_quantile_examples_fall_in_their_bands(acts):
    cfg = ScanConfig(quantile_sample=30, per_band=2)
    state = ActivationScan(LAYERS, D_MLP, DOCS, cfg, POS)
    tokens = torch.arange(DOCS)
    for start in range(0, DOCS, 8):
        ids = tokens[start : start + 8]
        state.update([acts[i, ids] for i in range(len(LAYERS))], ids)
    result = state.result()
    doc_max = acts[:, :, 1:, :].amax(dim=2).numpy()  # [layer, doc, d_mlp]
    sample = state.sample_docs
    for layer in range(len(LAYERS)):
        for n in range(D_MLP):
            values = np.sort(doc_max[layer, sample, n])
            for b, (lo, hi) in enumerate(cfg.bands):
                assert result.quantile_docs[layer, n, b, 0] >= 0  # every band has a pick
                for j in range(cfg.per_band):
                    doc = result.quantile_docs[layer, n, b, j]
                    if doc < 0:  # band narrower than per_band documents
                        continue
                    assert doc in sample
                    v = doc_max[layer, doc, n]
                    assert v == pytest.approx(result.quantile_values[layer, n, b, j])
                    rank = np.searchsorted(values, v)
                    assert lo * len(values) - 1 <= rank <= hi * len(values)
    assert band_label(0.99, 1.0) == "0.99-1.00"


def test_gather_activations_matches_indexing(acts):
    rng = np.random.default_rng(0)
    pairs = 50
    layer = rng.choice(LAYERS, pairs)
    neuron = rng.integers(0, D_MLP, pairs)
    doc = rng.integers(0, DOCS, pairs)
    tokens = torch.arange(DOCS)[:, None].expand(DOCS, POS)
    out = gather_activations(reader(acts), tokens, LAYERS, layer, neuron, doc, batch_size=4)
    slot = {layer_: i for i, layer_ in enumerate(LAYERS)}
    for p in range(pairs):
        np.testing.assert_array_equal(out[p], acts[slot[layer[p]], doc[p], :, neuron[p]].numpy())


def test_config_rejects_bad_bands():
    with pytest.raises(ValueError, match="quantile band"):
        ScanConfig(bands=((0.5, 0.2),))
