"""Augmenters: each proposes valid single-token substitutes (letters, a different word, same
leading-space style), from the subject model's embeddings, its next-token predictions, or a local
masked language model loaded by path (as a user with DistilBERT would)."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.n2g.augment import make_augmenter
from dd_assets.methods.n2g.tokens import has_letter, search_key
from dd_assets.models import load_bridge, vocabulary_strings
from dd_assets.registry import parse_registry
from tests.helpers import native_entry


@pytest.fixture(scope="module")
def subject(tokenizer_dir):
    spec = parse_registry({"models": [native_entry("aug", tokenizer_dir)]})["aug"]
    bridge = load_bridge(spec, "cpu")
    tok = bridge.tokenizer
    vocab = vocabulary_strings(tok, bridge.cfg.d_vocab)
    return bridge, tok, vocab, set(tok.all_special_ids)


@pytest.fixture(scope="module")
def masked_lm(tmp_path_factory):
    """A small BERT-style masked LM with its own WordPiece tokenizer, saved like a hub model."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    from dd_assets.text_sources import stdlib_pieces

    path = tmp_path_factory.mktemp("mlm")
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    texts = [t for _, (_, t) in zip(range(200), stdlib_pieces(), strict=False)]
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wp.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=800, special_tokens=special))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=wp, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
    )  # fmt: skip
    fast.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(fast), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    BertForMaskedLM(config).save_pretrained(path)
    return str(path)


def _prompt(tok, text: str) -> np.ndarray:
    return np.asarray([tok.bos_token_id, *tok.encode(text)], dtype=np.int64)


@pytest.mark.parametrize("name", ["embedding", "subject", "mlm", "none"])
def test_augmenters_propose_valid_substitutes(subject, masked_lm, name):
    bridge, tok, vocab, special = subject
    full = f"mlm:{masked_lm}" if name == "mlm" else name
    augmenter = make_augmenter(full, bridge, vocab, special, tok.pad_token_id)
    assert augmenter.name == full
    prompts = [_prompt(tok, " the value of the function"), _prompt(tok, " return a list")]
    positions = [2, 2]
    subs = augmenter.substitutes(prompts, positions, 5)
    assert len(subs) == 2
    for prompt, pos, cands in zip(prompts, positions, subs, strict=True):
        assert len(cands) <= 5
        original = vocab[int(prompt[pos])]
        for c in cands:
            word = vocab[c]
            assert c not in special and has_letter(word)
            assert search_key(word) != search_key(original)
            assert word[:1].isspace() == original[:1].isspace()
        assert len({search_key(vocab[c]) for c in cands}) == len(cands)  # distinct words
    if name == "none":
        assert subs == [[], []]
    if name == "embedding":
        assert all(len(c) == 5 for c in subs)  # a 1024-token vocabulary always has neighbours


def test_unknown_augmenter_is_refused(subject):
    bridge, tok, vocab, special = subject
    with pytest.raises(ValueError, match="unknown augmenter"):
        make_augmenter("distilbert", bridge, vocab, special, tok.pad_token_id)


def test_registry_validates_n2g_settings():
    base = {"name": "m", "loader": {"kind": "hub", "name": "gpt2"}}
    for bad, match in [
        ({"augmenter": "bert"}, "augmenter"),
        ({"neurons_per_layer": -1}, "neurons_per_layer"),
        ({"predict_mode": "mean"}, "predict_mode"),
        ({"mask_token": "eos"}, "mask_token"),
        ({"similarity_threshold": 0}, "similarity_threshold"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_registry({"models": [{**base, "n2g": bad}]})
    spec = parse_registry({"models": [{**base, "n2g": {"augmenter": "mlm:/models/distilbert"}}]})
    assert spec["m"].n2g.augmenter == "mlm:/models/distilbert"
