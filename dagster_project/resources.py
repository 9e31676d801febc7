"""Resources per deployment, configured from the environment (see `dd_assets.settings`)."""

import os
from dataclasses import asdict

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
        "explainer": ExplainerResource(data_root=root, **asdict(explainer)),
    }
