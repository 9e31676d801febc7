"""Builders for small, offline test models: a BPE tokenizer trained here and tiny registries."""

from __future__ import annotations

from pathlib import Path

import yaml

from dd_assets.text_sources import stdlib_pieces


def train_tokenizer(directory: Path, vocab_size: int = 1024) -> Path:
    """A byte-level BPE tokenizer trained on a slice of the stdlib text, saved for AutoTokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    pieces = []
    for i, (_, text) in enumerate(stdlib_pieces()):
        pieces.append(text)
        if i >= 300:
            break
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(pieces, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>"
    )
    fast.save_pretrained(directory)
    return directory


def native_entry(name: str, tokenizer_dir: Path, n_layers: int = 2, **overrides) -> dict:
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(tokenizer_dir))
    entry = {
        "name": name,
        "loader": {
            "kind": "native",
            "tokenizer": str(tokenizer_dir),
            "config": {
                "d_model": 64,
                "d_head": 16,
                "n_heads": 4,
                "n_layers": n_layers,
                "n_ctx": 64,
                "d_mlp": 96,
                "d_vocab": vocab,
                "act_fn": "gelu",
                "normalization_type": "LN",
                "seed": 0,
            },
        },
        "context_length": 24,
        "token_budget": 24 * 40,
        "top_k": 5,
        "batch_size": 8,
        "n2g": {"neurons_per_layer": None},  # every live neuron: the tiny model is cheap
    }
    entry.update(overrides)
    return entry


def write_registry(path: Path, entries: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"models": entries}))
    return path
