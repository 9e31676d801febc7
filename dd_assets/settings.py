"""Where data lives and which registry to read, shared by the pipeline, the CLI and the API.

Both come from the environment so that every process (CLI, Dagster run workers, the API) agrees
without passing flags around:

- ``DEEPDECIPHER_DATA_ROOT``: a local folder or any deltalake URI (``s3://bucket/prefix``,
  ``az://...``, ``gs://...``). Object-store credentials are read by delta-rs from the usual
  environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_REGION``, ...). Default: ``./data``.
- ``DEEPDECIPHER_REGISTRY``: path to the model registry YAML. Default: ``./models.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> str:
    """The data root as a string URI; local paths are made absolute."""
    root = os.environ.get("DEEPDECIPHER_DATA_ROOT", "data")
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def registry_path() -> Path:
    return Path(os.environ.get("DEEPDECIPHER_REGISTRY", "models.yaml")).expanduser().resolve()
