"""``python -m dd_infer --uds PATH`` (or ``--host H --port P``): run the inference service.

It exits when its parent process goes away, so a killed ``deepdecipher serve`` leaves no model
process behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

import uvicorn

from dd_infer.app import create_app


def _exit_with_parent() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dd_infer", description=__doc__)
    parser.add_argument("--uds", help="unix socket path to listen on")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    if args.uds:
        uvicorn.run(create_app(), uds=args.uds, log_level="warning")
    else:
        uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
