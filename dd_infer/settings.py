"""Inference service settings, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dd_api.query.live import MAX_TEXT_CHARS  # noqa: F401  one limit for the API and the service
from dd_assets.settings import registry_path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class InferSettings:
    registry: str = field(default_factory=lambda: str(registry_path()))
    """The model registry YAML: only its models can be run."""
    device: str | None = field(default_factory=lambda: os.environ.get("DEEPDECIPHER_DEVICE"))
    """Where models run; None: CUDA if available, else CPU (as the pipeline)."""
    max_models: int = field(default_factory=lambda: int(_env("DEEPDECIPHER_INFER_MODELS", "1")))
    """Models kept in memory at once; loading another evicts the least recently used."""
    max_pending: int = field(default_factory=lambda: int(_env("DEEPDECIPHER_INFER_QUEUE", "64")))
    """Requests queued or running at once; past this a request is refused (503, Retry-After)."""
    max_batch_tokens: int = field(
        default_factory=lambda: int(_env("DEEPDECIPHER_INFER_BATCH_TOKENS", "8192"))
    )
    """Padded tokens per forward pass: queued requests of one model are batched up to this."""
    timeout: float = field(default_factory=lambda: float(_env("DEEPDECIPHER_INFER_TIMEOUT", "30")))
    """Seconds a request may wait and run before it is answered 504 (a request may ask for less)."""

    def __post_init__(self) -> None:
        if self.max_models < 1 or self.max_pending < 1 or self.max_batch_tokens < 1:
            raise ValueError("inference models, queue and batch tokens must be positive")
        if self.timeout <= 0:
            raise ValueError(f"DEEPDECIPHER_INFER_TIMEOUT must be positive, got {self.timeout}")
