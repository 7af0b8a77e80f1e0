"""Child processes that do not outlive their parent (Linux `PR_SET_PDEATHSIG`).

The embedded broker, the simulator and benchmark/demo workers are children of
whatever started them. Stopped normally, their parent stops them; but a parent
killed with SIGKILL (an OOM kill, a CI timeout, `kill -9`) runs no cleanup, and
the children would keep their ports and memory forever. On Linux a child can
ask the kernel to signal it when its parent dies; elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that makes the child get `sig` when the parent dies.

    None (no hook) off Linux, and off the main thread: the kernel sends the
    signal when the *thread* that forked exits, so a child started from a
    short-lived thread would be killed with it. `prctl` is looked up here, in
    the parent: the hook runs between fork and exec, where loading anything
    could deadlock on a lock another thread held at the fork.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:  # pragma: no cover - runs in the child
        prctl(_PR_SET_PDEATHSIG, sig)

    return hook
