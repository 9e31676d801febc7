"""Schema fuzzing: schemathesis drives every route of the live OpenAPI schema on 127.0.0.1.

Run through schemathesis' CLI (its pytest plugin does not support pytest 9 yet), twice: once with
free-form path segments (mostly unknown models: 404s, malformed indices: 400s) and once with the
model pinned to one that exists, so generated layers, neurons and services reach real data (and
generated queries reach the explanation search, /api/{model}/explanation-search).
``--checks all``: no 5xx, documented status codes and content types, responses conforming to the
schema. DD_FUZZ_EXAMPLES (default 50 per operation and phase) bounds the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.test_inference import get_live
from tests.api.test_live import running_server

EXAMPLES = os.environ.get("DD_FUZZ_EXAMPLES", "50")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# A schema-valid text (1 to 2000 characters) can still be longer than the model's context, which
# JSON Schema cannot state (it counts tokens): for the live routes that 400 is an accepted answer.
LIVE = """
[[operations]]
include-operation-id-regex = "^(liveActivations|textSearch)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]
"""


@pytest.mark.parametrize("pin_model", [False, True], ids=["free", "pinned-model"])
def test_api_conforms_to_its_schema(tiny, tmp_path, pin_model):
    config = tmp_path / "schemathesis.toml"
    config.write_text(('[parameters]\n"path.model" = "tiny"\n' if pin_model else "") + LIVE)
    env = {"DEEPDECIPHER_DATA_ROOT": tiny.root, "DEEPDECIPHER_REGISTRY": str(tiny.registry)}
    with running_server(env) as base:
        # The live routes answer 503 until the inference process has loaded the model: wait.
        with httpx.Client(base_url=base, timeout=60) as client:
            get_live(client, "/api/tiny/activations/0/0", text="warm up")
        cmd = [
            str(SCHEMATHESIS), "--config-file", str(config), "run",
            f"{base}/schema/openapi.json", "--checks", "all", "--max-examples", EXAMPLES,
            "--seed", "0",
        ]  # fmt: skip
        # Run in tmp_path: schemathesis keeps a cache folder in its working directory.
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    print(summary.group(0) if summary else out.stdout[-2000:])
    assert out.returncode == 0, out.stdout[-4000:]
    assert summary and summary.group(1) == summary.group(2) and int(summary.group(1)) > 50
    # With the model pinned, generated requests must reach real data, not only 404s.
    assert ("Missing test data" in out.stdout) is not pin_model
