"""Child processes that stop with the CLI: each in its own process group, stopped group-wide.

`dagster dev` starts a code server, a webserver and a daemon of its own; signalling only the
`dagster dev` process, then killing it after a timeout, left those three running. Here every
child leads a new process group, so stopping sends the signal to the whole group (grandchildren
included) and, after a grace period, SIGKILL to whatever is left of it. On Linux each child also
gets SIGTERM from the kernel if the CLI itself dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM when the supervising process exits."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_child(cmd: Sequence[str], **popen_kwargs) -> subprocess.Popen:
    """Start `cmd` as a supervised child: the leader of a new process group."""
    return subprocess.Popen(
        list(cmd), start_new_session=True, preexec_fn=_die_with_parent, **popen_kwargs
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_children(children: Sequence[subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM each child's process group, wait up to `grace` seconds, then SIGKILL the rest."""
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        while time.monotonic() < deadline:
            child.poll()  # reap the leader so that only live members keep the group alive
            if not _group_alive(child.pid):
                break
            time.sleep(0.1)
        if _group_alive(child.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def wait_until_signalled(children: Sequence[subprocess.Popen]) -> None:
    """Block until SIGTERM/SIGINT arrives or any child exits; then stop them all."""

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # A second signal during the stop must not abandon the children half-stopped.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
