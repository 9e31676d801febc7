"""The package's layers, checked by import-linter's contracts in pyproject.toml: the API never
imports torch or dagster, the query layer never imports the web layer, and dd_api has no cycle
between its layers. A violation fails here with import-linter's report of the import chain."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is missing: pip install -e '.[dev]'"
    out = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
