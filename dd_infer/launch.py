"""Start the inference service as a child process of ``deepdecipher serve`` (stdlib only).

The service listens on a unix socket in a private temporary folder; the API finds it through
``DEEPDECIPHER_INFERENCE_URL`` (``unix:/path`` or ``http://host:port``), which this sets, so
uvicorn workers started after it inherit the address. If the service dies it is started again
after a pause (and given up on after repeated crashes); meanwhile the live routes answer 503.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

URL_VARIABLE = "DEEPDECIPHER_INFERENCE_URL"
RESTART_DELAY = 1.0
MAX_RESTARTS_PER_MINUTE = 5

log = logging.getLogger(__name__)


class InferenceProcess:
    """``python -m dd_infer`` on a unix socket, restarted when it exits unexpectedly."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._dir = Path(tempfile.mkdtemp(prefix="dd-infer-"))
        self.socket = self._dir / "infer.sock"
        self.url = f"unix:{self.socket}"
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._restarts: list[float] = []
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> InferenceProcess:
        self._spawn()
        self._watcher.start()
        return self

    def _spawn(self) -> None:
        self.socket.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "dd_infer", "--uds", str(self.socket)]
        self.proc = subprocess.Popen(cmd, env=self.env)

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            if self.proc is None or self.proc.poll() is None:
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < 60]
            if len(self._restarts) >= MAX_RESTARTS_PER_MINUTE:
                log.error("inference process keeps exiting; live routes stay unavailable")
                return
            log.warning("inference process exited (%s); restarting", self.proc.returncode)
            if self._stopping.wait(RESTART_DELAY):
                return
            self._restarts.append(now)
            self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=5)
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


@contextmanager
def inference_service(enabled: bool = True) -> Iterator[InferenceProcess | None]:
    """Start the inference process for the API in this block; disabled, live routes are off.

    If ``DEEPDECIPHER_INFERENCE_URL`` is already set (a service run elsewhere), it is used as is.
    """
    if not enabled:
        os.environ.pop(URL_VARIABLE, None)
    if not enabled or os.environ.get(URL_VARIABLE):
        yield None
        return
    service = InferenceProcess().start()
    os.environ[URL_VARIABLE] = service.url
    try:
        yield service
    finally:
        service.stop()
