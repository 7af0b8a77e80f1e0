"""CPU time and memory of another process, read from Linux's /proc.

The worker runs in its own process so that the benchmark measures only its
CPU: `utime + stime` in /proc/PID/stat counts every thread of the process, and
`VmHWM` in /proc/PID/status is the kernel's own record of its peak resident
memory, so no sampling can miss a spike.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")
_UTIME_AFTER_COMM = 11
"""Index of utime among the fields after `(comm)`: field 14 of proc(5), counted from `state` = 0."""
_KIB = 1024


class ProcError(RuntimeError):
    """The process is gone, or /proc does not say what we need (not Linux)."""


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime in clock ticks from the text of /proc/PID/stat.

    The command name sits in parentheses and may itself contain spaces or ')',
    so the fields are counted from the last ')'.
    """
    _, sep, tail = stat.rpartition(")")
    fields = tail.split()
    if not sep or len(fields) <= _UTIME_AFTER_COMM + 1:
        raise ProcError("unexpected /proc/PID/stat format")
    return int(fields[_UTIME_AFTER_COMM]) + int(fields[_UTIME_AFTER_COMM + 1])


def parse_status_kib(status: str, key: str) -> int:
    """A `Key:   1234 kB` value of /proc/PID/status, in KiB."""
    for line in status.splitlines():
        name, sep, value = line.partition(":")
        if sep and name == key:
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0])
    raise ProcError(f"{key} not found in /proc/PID/status")


def _read(pid: int, name: str) -> str:
    try:
        return (_PROC / str(pid) / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProcError(f"cannot read /proc/{pid}/{name}: {exc}") from None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (all threads)."""
    return parse_cpu_ticks(_read(pid, "stat")) / os.sysconf("SC_CLK_TCK")


def peak_rss_bytes(pid: int) -> int:
    """The highest resident memory the process has had since it started."""
    return parse_status_kib(_read(pid, "status"), "VmHWM") * _KIB


def rss_bytes(pid: int) -> int:
    """Resident memory right now."""
    return parse_status_kib(_read(pid, "status"), "VmRSS") * _KIB
