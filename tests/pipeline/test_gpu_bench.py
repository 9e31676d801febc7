"""bench/gpu.py: refuses a missing CUDA device clearly; its whole code path runs on CPU (--smoke)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _bench(tiny, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEEPDECIPHER_DATA_ROOT": tiny.root,
        "DEEPDECIPHER_REGISTRY": str(tiny.registry),
    }
    return subprocess.run(
        [sys.executable, "bench/gpu.py", "--model", "tiny", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_fails_clearly(tiny):
    out = _bench(tiny)
    assert out.returncode == 2
    assert "no CUDA device" in out.stderr


def test_smoke_runs_scan_and_n2g_on_cpu(tiny):
    out = _bench(tiny, "--device", "cpu", "--smoke")
    assert out.returncode == 0, out.stderr
    print(out.stdout)
    assert "ratio scan / bare forward" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("      ")]
    assert [int(r[0]) for r in rows] == [0, 1]  # one N2G row per layer
    assert all(int(r[1]) > 0 and float(r[-1]) > 0 for r in rows)  # neurons graphed, neurons/s
