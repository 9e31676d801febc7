"""Other ways in: a local Hugging Face model directory and local text/JSONL/Parquet datasets."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest
import torch

from dagster_project.runner import materialize_models
from dd_assets import storage
from dd_assets.methods.activations import LayerActivations
from dd_assets.models import load_bridge
from dd_assets.registry import DatasetSpec, load_registry
from dd_assets.tables import NEURON_EXAMPLES, NEURON_STATS
from dd_assets.text_sources import file_pieces, stdlib_pieces
from tests.helpers import write_registry


def test_local_directory_model_end_to_end(llama_dir, tmp_path):
    entry = {
        "name": "local-llama",
        "loader": {"kind": "local", "path": str(llama_dir)},
        "context_length": 16,
        "token_budget": 16 * 24,
        "top_k": 4,
        "batch_size": 8,
    }
    registry = write_registry(tmp_path / "models.yaml", [entry])
    bridge = load_bridge(load_registry(registry)["local-llama"], "cpu")
    tokens = torch.randint(3, 1000, (2, 9), generator=torch.Generator().manual_seed(0))
    reader = LayerActivations(bridge, [0, 2])
    assert reader.uses_fast_path
    _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n.endswith("mlp.hook_post"))
    torch.testing.assert_close(reader(tokens)[1], cache["blocks.2.mlp.hook_post"])

    root = str(tmp_path / "data")
    report = materialize_models(dg.DagsterInstance.ephemeral(), str(registry), root)
    assert report.layer_runs == ["0|local-llama", "1|local-llama", "2|local-llama"]
    stats = storage.read(root, NEURON_STATS, "local-llama")
    assert stats.height == 3 * 80
    examples = storage.read(root, NEURON_EXAMPLES, "local-llama")
    assert examples.filter(pl.col("kind") == "top").height == 3 * 80 * 4


def test_file_datasets(tmp_path):
    (tmp_path / "a.txt").write_text("first file")
    (tmp_path / "b.txt").write_text("second file")
    spec = DatasetSpec(kind="files", path=str(tmp_path), format="text")
    assert [t for _, t in file_pieces(spec)] == ["first file", "second file"]

    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": f"row {i}"}) for i in range(3)))
    spec = DatasetSpec(kind="files", path=str(jsonl), format="jsonl")
    assert [t for _, t in file_pieces(spec)] == ["row 0", "row 1", "row 2"]

    parquet = tmp_path / "d.parquet"
    pl.DataFrame({"body": ["x", "y"]}).write_parquet(parquet)
    spec = DatasetSpec(kind="files", path=str(parquet), format="parquet", column="body")
    assert [t for _, t in file_pieces(spec)] == ["x", "y"]

    with pytest.raises(FileNotFoundError):
        list(file_pieces(DatasetSpec(kind="files", path=str(tmp_path / "missing"))))


def test_stdlib_corpus_is_deterministic_and_mostly_prose():
    first = [p for _, p in zip(range(400), stdlib_pieces(), strict=False)]
    again = [p for _, p in zip(range(400), stdlib_pieces(), strict=False)]
    assert first == again
    chars = {"code": 0, "prose": 0}
    for source, text in first:
        chars["code" if source.startswith("code:") else "prose"] += len(text)
    share = chars["prose"] / sum(chars.values())
    assert 0.75 <= share <= 0.85
