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


def parse_busy_ticks(stat: str) -> int:
    """Busy clock ticks of all CPUs from the text of /proc/stat (everything but idle and iowait)."""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            # user nice system idle iowait irq softirq steal (guest time is already inside user)
            values = [int(v) for v in fields[1:9]]
            if len(values) < 8:
                break
            return sum(values) - values[3] - values[4]
    raise ProcError("unexpected /proc/stat format")


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (all CPUs added up)."""
    try:
        text = (_PROC / "stat").read_text(encoding="utf-8")
    except OSError as exc:
        raise ProcError(f"cannot read /proc/stat: {exc}") from None
    return parse_busy_ticks(text) / os.sysconf("SC_CLK_TCK")


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


class CpuMeter:
    """CPU seconds used by several processes since the meter was started, by name.

    Shows where a machine's CPU went during a run (worker, simulator, broker,
    the bench itself), which says whether the worker or its surroundings limit it.
    A process that has gone away keeps its last reading.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = dict(pids)
        self._start = {name: self._read(pid) for name, pid in self._pids.items()}
        self._last = dict(self._start)
        self._machine_start = machine_busy_seconds()

    @staticmethod
    def _read(pid: int) -> float | None:
        try:
            return cpu_seconds(pid)
        except ProcError:
            return None

    def used(self) -> dict[str, float]:
        """Seconds per process since the start (processes unreadable from the start are left out)."""
        out: dict[str, float] = {}
        for name, pid in self._pids.items():
            now = self._read(pid)
            if now is not None:
                self._last[name] = now
            start, last = self._start[name], self._last[name]
            if start is not None and last is not None:
                out[name] = last - start
        return out

    def others(self, used: dict[str, float]) -> float:
        """Seconds used meanwhile by every other process on the machine (other work competing for it)."""
        return max(0.0, machine_busy_seconds() - self._machine_start - sum(used.values()))


def rss_bytes(pid: int) -> int:
    """Resident memory right now."""
    return parse_status_kib(_read(pid, "status"), "VmRSS") * _KIB
