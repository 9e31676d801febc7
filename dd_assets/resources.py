"""Dagster resources the assets use: the model registry and the model loader."""

import dagster as dg

from dd_assets.models import load_bridge
from dd_assets.registry import ModelSpec, Registry, load_registry


class RegistryResource(dg.ConfigurableResource):
    """The model registry file; re-read on every access so edits apply to the next run."""

    path: str

    def load(self) -> Registry:
        return load_registry(self.path)

    def spec(self, model: str) -> ModelSpec:
        return self.load()[model]


class ModelLoader(dg.ConfigurableResource):
    """Loads TransformerBridge models, cached per process ("" device = CUDA if present, else CPU)."""

    device: str = ""

    def bridge(self, spec: ModelSpec):
        return load_bridge(spec, self.device or None)


class DeltaTables(dg.ConfigurableResource):
    """Direct, filtered reads of the Delta tables, for assets that need a slice of an upstream
    table (one layer, a few columns) rather than everything the IO manager would load."""

    root: str

    def read(self, table, model: str, layers: list[int] | None = None, columns=None):
        from dd_assets import storage

        return storage.read(self.root, table, model, layers, columns)
