"""API settings: one pydantic-settings class, read from ``DEEPDECIPHER_*`` variables once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CACHE_MB = 2048
"""Holds every partition the default model's neuron pages read (SmolLM2: ~1.3 GB, docs/api.md)."""


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEEPDECIPHER_", frozen=True, extra="ignore")

    data_root: str = "data"
    """Where the Delta tables live: a local folder or a deltalake URI (s3://...)."""
    registry: str = "models.yaml"
    """The model registry YAML; only models listed there are served."""
    refresh_seconds: float = Field(2.0, ge=0)
    """How often (at most) to look for new Delta versions of a table."""
    cache_mb: int = Field(DEFAULT_CACHE_MB, ge=1)
    """Memory budget of the partition cache in MiB (``DEEPDECIPHER_CACHE_MB``)."""
    max_page_size: int = 100_000
    """Upper bound of `limit` on list endpoints (important neurons)."""
    rate_limit_per_minute: int = Field(
        0, ge=0, validation_alias=AliasChoices("DEEPDECIPHER_RATE_LIMIT", "rate_limit_per_minute")
    )
    """Requests per minute per client address (``DEEPDECIPHER_RATE_LIMIT``); 0 turns it off."""
    inference_url: str | None = None
    """The inference service (``unix:/path`` or ``http://host:port``); unset: live routes 503."""
    inference_timeout: float = Field(
        30.0, gt=0, validation_alias=AliasChoices("DEEPDECIPHER_INFER_TIMEOUT", "inference_timeout")
    )
    """Seconds a live request may take (queue and forward pass) before it is answered 504
    (``DEEPDECIPHER_INFER_TIMEOUT``)."""

    blas_threads: int = Field(1, ge=1)
    """BLAS threads per API process (``DEEPDECIPHER_BLAS_THREADS``). The API's products are small
    (one query embedding, one [5,500 x 384] product): a second thread gains nothing, and on a busy
    machine spinning BLAS threads stall each other (measured under load: 252 ms per query
    embedding with 2 threads, 16 ms with 1)."""

    @field_validator("data_root")
    @classmethod
    def _absolute_root(cls, root: str) -> str:
        """Local roots are made absolute; URIs (s3://...) are kept as given."""
        if "://" in root:
            return root.rstrip("/")
        return str(Path(root).expanduser().resolve())

    @field_validator("registry")
    @classmethod
    def _absolute_registry(cls, path: str) -> str:
        return str(Path(path).expanduser().resolve())

    @property
    def cache_bytes(self) -> int:
        return self.cache_mb << 20


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()
