"""The numpy all-MiniLM-L6-v2 encoder against `transformers`' BertModel on the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertModel

from dd_assets.methods.sentence_encoder import default_encoder, model_dir

TEXTS = [
    "closing brackets",
    'tokens ")", "])" (often after "x"); promotes "\\n"',
    "the keyword def where a function definition starts",
    "a",
]


def _reference(texts: list[str]) -> np.ndarray:
    """sentence-transformers' recipe by hand: BertModel, mean over real tokens, unit length."""
    enc = default_encoder()
    model = BertModel.from_pretrained(str(model_dir())).eval()
    out = []
    for text in texts:
        ids = torch.tensor([enc.tokenizer.encode(text).ids])
        with torch.inference_mode():
            h = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
        v = h.mean(0).numpy()
        out.append(v / np.linalg.norm(v))
    return np.stack(out)


def test_numpy_encoder_matches_the_torch_model_in_batches_with_padding():
    got = default_encoder().embed(TEXTS, batch_size=3)  # mixed lengths: padding is masked
    assert got.shape == (4, 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, _reference(TEXTS), atol=2e-5)
    one_by_one = np.stack([default_encoder().embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(got, one_by_one, atol=1e-5)


def test_similar_phrases_are_closer_than_unrelated_ones():
    v = default_encoder().embed(["closing brackets", "closing parenthesis", "import statements"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    assert default_encoder().embed([]).shape == (0, 384)


@pytest.mark.parametrize("n", [1, 70])
def test_batching_does_not_change_vectors(n):
    texts = [f"tokens number {i}" for i in range(n)]
    enc = default_encoder()
    np.testing.assert_allclose(enc.embed(texts, 64), enc.embed(texts, 7), atol=1e-5)
