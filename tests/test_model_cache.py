"""The converted-model cache: exact round trip, damaged or partial entries rebuilt, racing writers.

A tiny random Llama stands in for the de-quantized model here; tests/test_smollm2.py checks the
real SmolLM2 conversion against its cache entry.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from dd_assets import model_cache


@pytest.fixture(scope="module")
def tiny_llama(tokenizer_dir):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval(), tok


@pytest.fixture
def entry(tmp_path):
    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF" + bytes(60))
    return model_cache.entry_path(tmp_path / "cache", "gguf", source, torch.float32)


def assert_same(a, b, tok_a, tok_b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    assert tok_a.backend_tokenizer.to_str() == tok_b.backend_tokenizer.to_str()
    ids = torch.tensor([tok_a.encode("def f(x):\n    return x + 1")])
    with torch.inference_mode():
        assert torch.equal(a(ids).logits, b(ids).logits)


def test_round_trip_is_exact(tiny_llama, entry):
    model, tok = tiny_llama
    assert model_cache.load(entry, torch.float32) is None  # nothing yet
    model_cache.store(entry, model, tok)
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # no temp left
    loaded, loaded_tok = model_cache.load(entry, torch.float32)
    assert loaded.dtype == torch.float32
    assert_same(model, loaded, tok, loaded_tok)


def test_key_changes_with_what_the_weights_depend_on(tmp_path):
    source = tmp_path / "a.gguf"
    source.write_bytes(b"GGUF" + bytes(60))
    key = model_cache.entry_path(tmp_path, "gguf", source, torch.float32)
    assert key == model_cache.entry_path(tmp_path, "gguf", source, torch.float32)
    assert key != model_cache.entry_path(tmp_path, "gguf", source, torch.bfloat16)
    source.write_bytes(b"GGUF" + bytes(61))  # another file under the same name
    assert key != model_cache.entry_path(tmp_path, "gguf", source, torch.float32)


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "no manifest", "extra file"])
def test_damaged_entry_is_ignored_removed_and_rebuilt(tiny_llama, entry, damage):
    model, tok = tiny_llama
    model_cache.store(entry, model, tok)
    weights = entry / model_cache.WEIGHTS
    data = bytearray(weights.read_bytes())
    if damage == "flipped byte":
        data[-5] ^= 0xFF  # inside the last tensor: the file still parses, the CRC does not match
        weights.write_bytes(bytes(data))
    elif damage == "truncated":
        weights.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "no manifest":  # e.g. copied by hand, half-way
        (entry / model_cache.MANIFEST).unlink()
    else:
        (entry / "stray.bin").write_bytes(b"x")
    assert model_cache.load(entry, torch.float32) is None
    assert not entry.exists() and list(entry.parent.iterdir()) == []
    model_cache.store(entry, model, tok)
    loaded, loaded_tok = model_cache.load(entry, torch.float32)
    assert_same(model, loaded, tok, loaded_tok)


def test_racing_writers_leave_one_whole_entry(tiny_llama, entry):
    model, tok = tiny_llama
    errors = []

    def write() -> None:
        try:
            model_cache.store(entry, model, tok)
        except Exception as err:  # store must never raise
            errors.append(err)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]
    first = (entry / model_cache.WEIGHTS).stat()
    model_cache.store(entry, model, tok)  # a later loser leaves the winner's files untouched
    assert (entry / model_cache.WEIGHTS).stat().st_ino == first.st_ino
    loaded, loaded_tok = model_cache.load(entry, torch.float32)
    assert_same(model, loaded, tok, loaded_tok)


def test_stale_temporary_folders_are_cleared(tiny_llama, entry):
    model, tok = tiny_llama
    entry.parent.mkdir(parents=True)
    stale = entry.parent / f".{entry.name}.killed"
    fresh = entry.parent / f".{entry.name}.writing"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / model_cache.WEIGHTS).write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    model_cache.store(entry, model, tok)
    assert not stale.exists() and fresh.exists()  # another process may still be writing that one


def test_unwritable_cache_costs_only_the_cache(tiny_llama, tmp_path):
    model, tok = tiny_llama
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    entry = blocker / "entry"
    model_cache.store(entry, model, tok)  # logs, does not raise
    assert model_cache.load(entry, torch.float32) is None


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPDECIPHER_MODEL_CACHE", "off")
    assert model_cache.cache_root() is None
    monkeypatch.setenv("DEEPDECIPHER_MODEL_CACHE", str(tmp_path))
    assert model_cache.cache_root() == tmp_path
    monkeypatch.delenv("DEEPDECIPHER_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache.cache_root() == tmp_path / "xdg" / "deepdecipher" / "models"
