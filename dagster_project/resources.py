"""Resources per deployment, configured from the environment (see `dd_assets.settings`)."""

import os

from dd_assets.io_manager import DeltaIOManager
from dd_assets.resources import DeltaTables, ExplainerResource, ModelLoader, RegistryResource
from dd_assets.settings import ExplainerSettings, data_root, registry_path


def build_resources(root: str | None = None, registry: str | None = None) -> dict[str, object]:
    root = root or data_root()
    explainer = ExplainerSettings.from_env()
    return {
        "io_manager": DeltaIOManager(root=root),
        "tables": DeltaTables(root=root),
        "registry": RegistryResource(path=registry or str(registry_path())),
        "models": ModelLoader(device=os.environ.get("DEEPDECIPHER_DEVICE", "")),
        "explainer": ExplainerResource(
            data_root=root,
            base_url=explainer.base_url,
            explainer_model=explainer.explainer_model,
            simulator_model=explainer.simulator_model,
            max_neurons=explainer.max_neurons,
            max_tokens=explainer.max_tokens,
            concurrency=explainer.concurrency,
            cache_dir=explainer.cache_dir,
        ),
    }
