"""Augmentation: variants of a pruned prompt with one important token replaced by a plausible other.

N2G used DistilBERT to propose substitutes for important words. Hub downloads are not always
possible, so the substitutes can come from:

- ``embedding``: the subject model's nearest tokens by cosine similarity of input embeddings
  (no forward pass; always available);
- ``subject``: the subject model's own next-token candidates at the position before the word
  (one full forward pass per prompt; sees only the left context);
- ``mlm:<name or path>``: a masked language model (e.g. ``mlm:distilbert-base-uncased``), the
  reference method, when the user has one;
- ``none``: no augmentation.

Substitution happens at the level of subject-model tokens, so positions stay aligned with the
original prompt (the original's importance sets carry over exactly). Candidates must contain a
letter, differ from the original after normalisation, keep the original's leading-space style,
and (for probabilistic sources) have probability >= 1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from dd_assets.methods.n2g.tokens import has_letter, search_key

MIN_PROB = 1e-5


class Augmenter(Protocol):
    name: str

    def substitutes(
        self, prompts: Sequence[np.ndarray], positions: Sequence[int], k: int
    ) -> list[list[int]]:
        """Up to `k` replacement token ids for position `positions[i]` of `prompts[i]`."""
        ...


def _acceptable(vocab: Sequence[str], original: int, candidate: int, special: set[int]) -> bool:
    if candidate in special or candidate == original or candidate >= len(vocab):
        return False
    a, b = vocab[original], vocab[candidate]
    if not has_letter(b) or search_key(a) == search_key(b):
        return False
    return a[:1].isspace() == b[:1].isspace()


def _pick(vocab, original: int, ranked: Sequence[int], special: set[int], k: int) -> list[int]:
    out: list[int] = []
    seen = {search_key(vocab[original])}
    for c in ranked:
        c = int(c)
        if len(out) >= k:
            break
        if _acceptable(vocab, original, c, special) and search_key(vocab[c]) not in seen:
            seen.add(search_key(vocab[c]))
            out.append(c)
    return out


class NoAugmenter:
    name = "none"

    def substitutes(self, prompts, _positions, _k):
        return [[] for _ in prompts]


class EmbeddingAugmenter:
    """Nearest neighbours of the token's input embedding (cosine), cached per token id."""

    name = "embedding"

    def __init__(self, w_e: torch.Tensor, vocab: Sequence[str], special: set[int], pool: int = 64):
        self.unit = torch.nn.functional.normalize(w_e.detach().float(), dim=-1)
        self.vocab, self.special, self.pool = vocab, special, pool
        self._cache: dict[int, list[int]] = {}

    def _ranked(self, ids: list[int]) -> None:
        todo = [i for i in dict.fromkeys(ids) if i not in self._cache]
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            sims = self.unit[chunk] @ self.unit.T
            top = sims.topk(min(self.pool, sims.shape[1]), dim=-1).indices.cpu().numpy()
            for tid, row in zip(chunk, top, strict=True):
                self._cache[tid] = row.tolist()

    def substitutes(self, prompts, positions, k):
        originals = [int(p[pos]) for p, pos in zip(prompts, positions, strict=True)]
        self._ranked(originals)
        return [_pick(self.vocab, o, self._cache[o], self.special, k) for o in originals]


class SubjectModelAugmenter:
    """The subject model's likeliest next tokens at the position before the substituted one."""

    name = "subject"

    def __init__(
        self, bridge, vocab: Sequence[str], special: set[int], pad_id: int, batch: int = 64
    ):
        self.bridge, self.vocab, self.special = bridge, vocab, special
        self.pad_id, self.batch = pad_id, batch
        self.device = next(bridge.parameters()).device

    @torch.inference_mode()
    def substitutes(self, prompts, positions, k):
        out: list[list[int]] = []
        for start in range(0, len(prompts), self.batch):
            chunk = list(range(start, min(start + self.batch, len(prompts))))
            width = max(int(positions[i]) for i in chunk)  # the prefix before each position
            ids = np.full((len(chunk), max(width, 1)), self.pad_id, dtype=np.int64)
            for r, i in enumerate(chunk):
                ids[r, : positions[i]] = prompts[i][: positions[i]]
            logits = self.bridge(torch.from_numpy(ids).to(self.device))
            for r, i in enumerate(chunk):
                probs = torch.softmax(logits[r, positions[i] - 1].float(), dim=-1)
                top = probs.topk(64)
                ranked = [
                    int(t) for t, p in zip(top.indices, top.values, strict=True) if p >= MIN_PROB
                ]
                out.append(
                    _pick(self.vocab, int(prompts[i][positions[i]]), ranked, self.special, k)
                )
        return out


class MaskedLMAugmenter:
    """A masked LM's candidates for the word at the position, re-tokenised by the subject model.

    Only candidates that are a single subject-model token (with the original's leading space)
    are used, which keeps positions aligned.
    """

    def __init__(self, name_or_path: str, tokenizer, vocab: Sequence[str], special: set[int]):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        self.name = f"mlm:{name_or_path}"
        self.mlm_tok = AutoTokenizer.from_pretrained(name_or_path)
        self.mlm = AutoModelForMaskedLM.from_pretrained(name_or_path).eval()
        self.tokenizer, self.vocab, self.special = tokenizer, vocab, special

    @torch.inference_mode()
    def substitutes(self, prompts, positions, k):
        out = []
        mask = self.mlm_tok.mask_token
        for prompt, pos in zip(prompts, positions, strict=True):
            before = "".join(self.vocab[int(t)] for t in prompt[1:pos])
            after = "".join(self.vocab[int(t)] for t in prompt[pos + 1 :])
            original = self.vocab[int(prompt[pos])]
            space = " " if original[:1].isspace() else ""
            enc = self.mlm_tok(before + space + mask + after, return_tensors="pt", truncation=True)
            where = (enc["input_ids"][0] == self.mlm_tok.mask_token_id).nonzero()
            if len(where) == 0:
                out.append([])
                continue
            logits = self.mlm(**enc).logits[0, int(where[0])]
            probs = torch.softmax(logits.float(), dim=-1)
            top = probs.topk(200)
            ranked = []
            for t, p in zip(top.indices.tolist(), top.values.tolist(), strict=True):
                if p < MIN_PROB:
                    break
                word = self.mlm_tok.convert_tokens_to_string(
                    [self.mlm_tok.convert_ids_to_tokens(t)]
                )
                word = word.strip()
                if original.strip()[:1].isupper():
                    word = word[:1].upper() + word[1:]
                ids = self.tokenizer.encode(space + word, add_special_tokens=False)
                if len(ids) == 1:
                    ranked.append(ids[0])
            out.append(_pick(self.vocab, int(prompt[pos]), ranked, self.special, k))
        return out


def make_augmenter(
    name: str, bridge, vocab: Sequence[str], special: set[int], pad_id: int
) -> Augmenter:
    """The augmenter a registry entry names (see the module docstring)."""
    if name == "none":
        return NoAugmenter()
    if name == "embedding":
        return EmbeddingAugmenter(bridge.W_E, vocab, special)
    if name == "subject":
        return SubjectModelAugmenter(bridge, vocab, special, pad_id)
    if name.startswith("mlm:"):
        return MaskedLMAugmenter(name.removeprefix("mlm:"), bridge.tokenizer, vocab, special)
    raise ValueError(f"unknown augmenter {name!r}")
