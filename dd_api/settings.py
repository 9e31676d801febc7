"""API settings, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

from dd_assets.settings import data_root, registry_path


@dataclass(frozen=True)
class ApiSettings:
    data_root: str = field(default_factory=data_root)
    """Where the Delta tables live: a local folder or a deltalake URI (s3://...)."""
    registry: str = field(default_factory=lambda: str(registry_path()))
    """The model registry YAML; only models listed there are served."""
    refresh_seconds: float = field(
        default_factory=lambda: float(os.environ.get("DEEPDECIPHER_REFRESH_SECONDS", "2"))
    )
    """How often (at most) to look for new Delta versions of a table."""
    cache_partitions: int = field(
        default_factory=lambda: int(os.environ.get("DEEPDECIPHER_CACHE_PARTITIONS", "48"))
    )
    """How many (table, model, layer) partitions to keep in memory for point lookups."""
    max_page_size: int = 100_000
    """Upper bound of `limit` on list endpoints (important neurons)."""
    rate_limit_per_minute: int = field(
        default_factory=lambda: int(os.environ.get("DEEPDECIPHER_RATE_LIMIT", "0"))
    )
    """Requests per minute per client address; 0 (default) turns rate limiting off."""
    inference_url: str | None = field(
        default_factory=lambda: os.environ.get("DEEPDECIPHER_INFERENCE_URL") or None
    )
    """The inference service (``unix:/path`` or ``http://host:port``); unset: live routes 503."""
    inference_timeout: float = field(
        default_factory=lambda: float(os.environ.get("DEEPDECIPHER_INFER_TIMEOUT", "30"))
    )
    """Seconds a live request may take (queue and forward pass) before it is answered 504."""


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()
