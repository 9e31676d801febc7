"""Where data lives and which registry to read, shared by the pipeline, the CLI and the API.

Both come from the environment so that every process (CLI, Dagster run workers, the API) agrees
without passing flags around:

- ``DEEPDECIPHER_DATA_ROOT``: a local folder or any deltalake URI (``s3://bucket/prefix``,
  ``az://...``, ``gs://...``). Object-store credentials are read by delta-rs from the usual
  environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_REGION``, ...). Default: ``./data``.
- ``DEEPDECIPHER_REGISTRY``: path to the model registry YAML. Default: ``./models.yaml``.
- ``DEEPDECIPHER_EXPLAINER_*``: the neuron explainer's LLM endpoint and budget
  (`ExplainerSettings`); unset means the offline explainer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def data_root() -> str:
    """The data root as a string URI; local paths are made absolute."""
    root = os.environ.get("DEEPDECIPHER_DATA_ROOT", "data")
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def registry_path() -> Path:
    return Path(os.environ.get("DEEPDECIPHER_REGISTRY", "models.yaml")).expanduser().resolve()


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class ExplainerSettings:
    """The neuron explainer's endpoint and budget, from ``DEEPDECIPHER_EXPLAINER_*`` variables.

    No base URL means no LLM: every neuron is explained offline. The API key is deliberately not
    here: the client reads ``DEEPDECIPHER_EXPLAINER_API_KEY`` or ``OPENAI_API_KEY`` when it starts,
    so the key never enters Dagster's run config, logs or the cache.
    """

    base_url: str = ""
    """OpenAI-compatible endpoint, e.g. ``https://api.openai.com/v1`` or ``http://host:8000/v1``."""
    explainer_model: str = ""
    """Model that writes explanations (required with a base URL)."""
    simulator_model: str = ""
    """Model that simulates activations for scoring; defaults to the explainer model."""
    max_neurons: int = 100
    """Neurons per run (one model x layer partition) explained by the LLM; the rest offline."""
    max_tokens: int = 1_000_000
    """Prompt + completion tokens per run; 0 = no limit. Neurons not started by then go offline."""
    concurrency: int = 4
    """Requests in flight at once."""
    simulator: str = "auto"
    """``auto``: OpenAI's all-at-once simulator where the endpoint echoes prompt log-probabilities
    (completions with ``echo``), else the chat simulator; ``chat``: always the chat simulator."""
    cache_dir: str = ""
    """Folder of the reply cache; default ``<data root>/_explainer_cache`` (local roots) or
    ``./.explainer_cache``."""

    @classmethod
    def from_env(cls) -> ExplainerSettings:
        env = os.environ.get
        explainer = env("DEEPDECIPHER_EXPLAINER_MODEL", "").strip()
        return cls(
            base_url=env("DEEPDECIPHER_EXPLAINER_BASE_URL", "").strip(),
            explainer_model=explainer,
            simulator_model=env("DEEPDECIPHER_SIMULATOR_MODEL", "").strip() or explainer,
            max_neurons=_int_env("DEEPDECIPHER_EXPLAINER_MAX_NEURONS", cls.max_neurons),
            max_tokens=_int_env("DEEPDECIPHER_EXPLAINER_MAX_TOKENS", cls.max_tokens),
            concurrency=_int_env("DEEPDECIPHER_EXPLAINER_CONCURRENCY", cls.concurrency),
            simulator=env("DEEPDECIPHER_SIMULATOR", "").strip() or cls.simulator,
            cache_dir=env("DEEPDECIPHER_EXPLAINER_CACHE", "").strip(),
        )
