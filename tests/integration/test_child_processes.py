"""Broker and simulator children do not outlive a parent killed with SIGKILL (Linux)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qroute.childproc import die_with_parent

PARENT = """
import json, sys, time
from qroute.embedded import EmbeddedBroker
from qroute.sim import run_in_subprocess
from qroute.sim.config import default_config
with EmbeddedBroker() as broker, run_in_subprocess(default_config()) as sim:
    print(json.dumps({"broker": broker.pid, "sim": sim.pid}), flush=True)
    time.sleep(120)
"""


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" in state.split()[1]


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_stop_when_the_parent_is_killed() -> None:
    """SIGKILL the process that started a broker and a simulator: both children exit too."""
    with subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout is not None
            pids = json.loads(parent.stdout.readline())
            assert not _gone(pids["broker"])
            assert not _gone(pids["sim"])
        finally:
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(_gone(pid) for pid in pids.values()):
        time.sleep(0.1)
    left = {name: pid for name, pid in pids.items() if not _gone(pid)}
    for pid in left.values():  # do not leak them into the rest of the session
        os.kill(pid, signal.SIGKILL)
    assert left == {}


def test_no_hook_off_the_main_thread() -> None:
    """A child started from another thread would die with that thread: no hook there."""
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(die_with_parent()))
    thread.start()
    thread.join()
    assert seen == [None]
    if sys.platform == "linux":
        assert callable(die_with_parent())
