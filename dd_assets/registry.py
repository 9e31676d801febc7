"""The model registry: which models to compute and serve, and how to load and scan each one.

The registry is a YAML file (``models.yaml`` by default, see `dd_assets.settings`). It is plain data,
read without importing torch, so the API can validate model names against it before it builds any
storage path, and the Dagster sensor can diff it to add or drop model partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
"""Model names appear in URLs, Dagster partition keys and Delta predicates: keep them boring."""

LOADER_KINDS = ("packaged_gguf", "hub", "local", "native")
DATASET_KINDS = ("stdlib", "files", "hf")
HOOKS = ("mlp.hook_post", "mlp.hook_mid", "mlp.hook_pre")


@dataclass(frozen=True)
class LoaderSpec:
    """How to build a model: from packaged GGUF weights, the HF hub, a local directory, or natively."""

    kind: str
    name: str | None = None
    path: str | None = None
    package: str | None = None
    file: str | None = None
    config: dict[str, Any] | None = None
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in LOADER_KINDS:
            raise ValueError(f"loader kind {self.kind!r} is not one of {LOADER_KINDS}")
        required = {
            "packaged_gguf": ("package", "file"),
            "hub": ("name",),
            "local": ("path",),
            "native": ("config", "tokenizer"),
        }[self.kind]
        missing = [f for f in required if getattr(self, f) is None]
        if missing:
            raise ValueError(f"loader kind {self.kind!r} needs {missing}")

    def describe(self) -> str:
        """A short human-readable origin, shown in metadata."""
        return {
            "packaged_gguf": f"{self.package}/{self.file}",
            "hub": f"hf:{self.name}",
            "local": f"local:{self.path}",
            "native": "native (random weights)",
        }[self.kind]


@dataclass(frozen=True)
class DatasetSpec:
    """Where the text comes from: the Python standard library (offline), local files, or the HF hub."""

    kind: str = "stdlib"
    path: str | None = None
    format: str = "text"
    name: str | None = None
    split: str = "train"
    column: str = "text"

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise ValueError(f"dataset kind {self.kind!r} is not one of {DATASET_KINDS}")
        if self.kind == "files" and not self.path:
            raise ValueError("dataset kind 'files' needs a path")
        if self.kind == "files" and self.format not in ("text", "jsonl", "parquet"):
            raise ValueError(f"dataset format {self.format!r} is not text, jsonl or parquet")
        if self.kind == "hf" and not self.name:
            raise ValueError("dataset kind 'hf' needs a name")

    def describe(self) -> str:
        return {
            "stdlib": "Python standard library (reference docs, docstrings, source; ~80% prose)",
            "files": f"files:{self.path}",
            "hf": f"hf:{self.name}[{self.split}]",
        }[self.kind]


AUGMENTERS = ("embedding", "subject", "none")


@dataclass(frozen=True)
class N2GSpec:
    """Neuron2Graph settings of a model (method defaults live in `dd_assets.methods.n2g`)."""

    neurons_per_layer: int | None = 16  # the most active neurons of each layer; None = all
    random_per_layer: int = 0  # plus a seeded random sample of the layer's other live neurons
    sample_seed: int = 0  # seed of that random sample (with the layer number)
    augmenter: str = "embedding"  # embedding | subject | none | mlm:<masked LM name or path>
    augmented_saliency: bool = True  # False: augmentations reuse their original's importances
    max_augmentations: int = 5
    mask_token: str | int = "pad"  # "pad": the tokenizer's pad token (else id 1), or a token id
    normalize_tokens: bool = True
    predict_mode: str = "longest"
    similarity_threshold: float = 0.4
    similarity_compat: bool = False  # reproduce DeepDecipher's served similarity values
    max_batch_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.neurons_per_layer is not None and self.neurons_per_layer < 0:
            raise ValueError("n2g.neurons_per_layer must be >= 0 (or null for all neurons)")
        if self.random_per_layer < 0:
            raise ValueError("n2g.random_per_layer must be >= 0")
        if self.augmenter not in AUGMENTERS and not self.augmenter.startswith("mlm:"):
            raise ValueError(
                f"n2g.augmenter {self.augmenter!r} is not one of {AUGMENTERS} or mlm:<name>"
            )
        if self.predict_mode not in ("longest", "max"):
            raise ValueError("n2g.predict_mode must be 'longest' or 'max'")
        if isinstance(self.mask_token, str) and self.mask_token != "pad":
            raise ValueError("n2g.mask_token must be 'pad' or a token id")
        if not 0 < self.similarity_threshold <= 1:
            raise ValueError("n2g.similarity_threshold must be in (0, 1]")
        if self.max_batch_tokens < 64:
            raise ValueError("n2g.max_batch_tokens must be >= 64")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: everything the pipeline needs to scan a model's MLP neurons."""

    name: str
    loader: LoaderSpec
    hook: str = "mlp.hook_post"
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    context_length: int = 128
    token_budget: int = 98_304
    top_k: int = 20
    batch_size: int = 16
    dtype: str = "float32"
    n2g: N2GSpec = field(default_factory=N2GSpec)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"model name {self.name!r} must match {NAME_PATTERN.pattern}")
        if self.hook not in HOOKS:
            raise ValueError(f"hook {self.hook!r} is not one of {HOOKS}")
        if self.context_length < 2:
            raise ValueError(
                f"context_length must be >= 2 (BOS + one token), got {self.context_length}"
            )
        if self.token_budget < self.context_length:
            raise ValueError("token_budget must hold at least one document")
        if self.top_k < 1 or self.batch_size < 1:
            raise ValueError("top_k and batch_size must be positive")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype {self.dtype!r} is not float32, bfloat16 or float16")

    @property
    def num_documents(self) -> int:
        return self.token_budget // self.context_length


@dataclass(frozen=True)
class Registry:
    models: tuple[ModelSpec, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for m in self.models:
            if m.name in seen:
                raise ValueError(f"model {m.name!r} is registered twice")
            seen.add(m.name)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> ModelSpec | None:
        return next((m for m in self.models if m.name == name), None)

    def __getitem__(self, name: str) -> ModelSpec:
        spec = self.get(name)
        if spec is None:
            raise KeyError(f"model {name!r} is not in the registry ({self.names})")
        return spec


def parse_registry(data: dict[str, Any]) -> Registry:
    """Build a `Registry` from the YAML's parsed content, raising ValueError on any bad field."""
    entries = data.get("models") or []
    if not isinstance(entries, list):
        raise ValueError("registry 'models' must be a list")
    models = []
    for entry in entries:
        entry = dict(entry)
        entry["loader"] = LoaderSpec(**entry.get("loader", {}))
        entry["dataset"] = DatasetSpec(**(entry.get("dataset") or {}))
        entry["n2g"] = N2GSpec(**(entry.get("n2g") or {}))
        models.append(ModelSpec(**entry))
    return Registry(tuple(models))


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry file."""
    with open(path, encoding="utf-8") as f:
        return parse_registry(yaml.safe_load(f) or {})
