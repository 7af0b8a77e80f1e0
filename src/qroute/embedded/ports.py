"""Loopback port checks for the embedded broker.

Tansu does not fail when its port is taken: it logs `AddrInUse`, panics in a task and exits
with rc=0. A launcher that only waits for the port to answer would then talk to whatever
else holds it, so the launcher checks the port is free first and, on Linux, that the
listening socket really belongs to the process it spawned.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

_TCP_LISTEN = "0A"  # socket state LISTEN in /proc/net/tcp


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port and it can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """A port the kernel considers free on host (it may be taken again before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def port_answers(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when a TCP connection to host:port is accepted."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def _listening_inodes(pid: int, port: int) -> set[str] | None:
    """Socket inodes listening on `port` in pid's network namespace; None without /proc."""
    inodes: set[str] = set()
    found_table = False
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        try:
            lines = path.read_text().splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _TCP_LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes if found_table else None


def process_listens_on(pid: int, port: int) -> bool | None:
    """Whether process `pid` owns a socket listening on `port`; None when it cannot be known (no /proc)."""
    inodes = _listening_inodes(pid, port)
    if inodes is None:
        return None
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None if not Path("/proc").is_dir() else False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed since listdir
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False
