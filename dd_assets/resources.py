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


class ExplainerResource(dg.ConfigurableResource):
    """Where explanations come from: an OpenAI-compatible endpoint, or none (offline explainer).

    Built from `dd_assets.settings.ExplainerSettings` (environment). `data_root` is where the
    asset reads its inputs and, for local roots, keeps the LLM reply cache.
    """

    data_root: str
    base_url: str = ""
    explainer_model: str = ""
    simulator_model: str = ""
    max_neurons: int = 100
    max_tokens: int = 1_000_000
    concurrency: int = 4
    simulator: str = "auto"
    cache_dir: str = ""

    @property
    def uses_llm(self) -> bool:
        return bool(self.base_url)

    def cache_path(self, model: str, layer: int) -> str:
        """One JSON-lines cache file per (model, layer): concurrent layer runs never share one."""
        folder = self.cache_dir
        if not folder:
            local = "://" not in self.data_root or self.data_root.startswith("file://")
            root = self.data_root.removeprefix("file://")
            folder = f"{root}/_explainer_cache" if local else ".explainer_cache"
        return f"{folder}/{model}/layer={layer}.jsonl"
