"""Shared fixtures: a tokenizer trained here, a tiny random-weight model, and its materialized data.

Everything is offline and small: the pipeline fixture materializes a 2-layer ``boot_native`` model
over 40 documents of the stdlib corpus in a few seconds, into a temporary Delta root.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import torch

from dagster_project.runner import MaterializeReport, materialize_models
from tests.helpers import native_entry, train_tokenizer, write_registry


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@dataclass
class Materialized:
    root: str
    registry: Path
    instance: dg.DagsterInstance
    report: MaterializeReport


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, tokenizer_dir) -> Materialized:
    """The 'tiny' native model (2 layers x 96 neurons), materialized once for the session."""
    base = tmp_path_factory.mktemp("tiny")
    registry = write_registry(base / "models.yaml", [native_entry("tiny", tokenizer_dir)])
    instance = dg.DagsterInstance.ephemeral()
    root = str(base / "data")
    report = materialize_models(instance, str(registry), root)
    return Materialized(root, registry, instance, report)


@pytest.fixture
def data_copy(tiny, tmp_path) -> str:
    """A private copy of the tiny model's tables, safe to rewrite."""
    root = tmp_path / "data"
    shutil.copytree(tiny.root, root)
    return str(root)


@pytest.fixture
def api_env(tiny, monkeypatch):
    """Point the API's settings at the tiny model's data."""
    monkeypatch.setenv("DEEPDECIPHER_DATA_ROOT", tiny.root)
    monkeypatch.setenv("DEEPDECIPHER_REGISTRY", str(tiny.registry))
    monkeypatch.setenv("DEEPDECIPHER_REFRESH_SECONDS", "0")
    return tiny


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, tokenizer_dir):
    """A tiny random Llama (gated SiLU MLP, like SmolLM2) saved as a Hugging Face directory."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=80, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
